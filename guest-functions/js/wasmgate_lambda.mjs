// wasmgate's adapter for JavaScript functions written as for AWS Lambda's
// Node.js runtime.
//
// `wasmgate build` compiles a Lambda-style handler into a component with
// componentize-js; the entry it generates exports `handle` (the export of
// `wasmgate:function/handler`) as `lambdaHandle(module.handler)`. The adapter
// calls the handler as Lambda's Node.js runtime does:
//
// - `handler(event, context)` may be async (its promise is awaited) or take
//   a third argument, the callback `(error, result)`;
// - `context` has Lambda's names: `awsRequestId`, `functionName`,
//   `functionVersion`, `invokedFunctionArn`, `memoryLimitInMB`,
//   `logGroupName`, `logStreamName` and `getRemainingTimeInMillis()`;
// - a thrown `Error` (or a rejected promise) becomes the error
//   `errorType` = its `name`, `errorMessage` = its `message`, with its stack
//   lines as the error's `stackTrace`;
// - `console.log` writes to the invocation's log; `fetch` sends outbound
//   requests to the hosts the function's `allowed_outbound_hosts` lists.

import { getEnvironment } from 'wasi:cli/environment@0.2.12';
import { stackTrace } from 'wasmgate:function/report@0.2.0';

// Lambda's account id as wasmgate's proxy events give it.
const ACCOUNT = '000000000000';
const REGION = 'local';

function environment() {
  const env = {};
  for (const [key, value] of getEnvironment()) env[key] = value;
  return env;
}

function lambdaContext(ctx) {
  const env = environment();
  const deadline = Number(ctx.deadlineMs);
  return {
    awsRequestId: ctx.requestId,
    functionName: env.AWS_LAMBDA_FUNCTION_NAME ?? '',
    functionVersion: env.AWS_LAMBDA_FUNCTION_VERSION ?? '$LATEST',
    memoryLimitInMB: env.AWS_LAMBDA_FUNCTION_MEMORY_SIZE ?? '',
    logGroupName: env.AWS_LAMBDA_LOG_GROUP_NAME ?? '',
    logStreamName: env.AWS_LAMBDA_LOG_STREAM_NAME ?? '',
    invokedFunctionArn: `arn:aws:lambda:${REGION}:${ACCOUNT}:function:${ctx.invokedQualifier}`,
    callbackWaitsForEmptyEventLoop: true,
    getRemainingTimeInMillis: () => Math.max(0, deadline - Date.now()),
  };
}

// An error's stack as Node.js writes it (`Name: message`, then `    at
// function (file:///var/task/index.mjs:14:11)`), from SpiderMonkey's
// `function@app/index.mjs:14:11` lines: the function's own frames only.
function nodeStack(error) {
  const frames = String(error.stack ?? '')
    .split('\n')
    .map((line) => /^(.*)@app\/(.+)$/.exec(line.trim()))
    .filter((m) => m !== null && !m[2].startsWith('wasmgate_lambda.mjs:') && !m[2].startsWith('__wasmgate_entry.mjs:'))
    .map(([, fn, at]) => `    at ${fn || '<anonymous>'} (file:///var/task/${at})`);
  return [`${error.name}: ${error.message}`, ...frames];
}

function failure(error) {
  let errorType = 'Error';
  let errorMessage;
  let trace = [];
  if (error instanceof Error) {
    errorType = error.name || 'Error';
    errorMessage = error.message;
    trace = nodeStack(error);
  } else if (error !== null && typeof error === 'object') {
    errorType = error.errorType ?? error.name ?? 'Error';
    errorMessage = error.errorMessage ?? error.message ?? JSON.stringify(error);
  } else {
    errorMessage = String(error);
  }
  console.error(`ERROR\tInvoke Error\t${JSON.stringify({ errorType, errorMessage, stack: trace })}`);
  stackTrace(trace);
  return { errorType, errorMessage: String(errorMessage) };
}

function call(handler, event, context) {
  if (handler.length >= 3) {
    return new Promise((resolve, reject) => {
      const settled = handler(event, context, (error, result) => (error ? reject(error) : resolve(result)));
      if (settled && typeof settled.then === 'function') settled.then(resolve, reject);
    });
  }
  return handler(event, context);
}

// Returns the `handle` export for `handler`.
export function lambdaHandle(handler, name) {
  if (typeof handler !== 'function') {
    throw new Error(`Runtime.HandlerNotFound: ${name} is not a function`);
  }
  return async function handle(event, ctx) {
    let result;
    try {
      result = await call(handler, JSON.parse(event), lambdaContext(ctx));
    } catch (error) {
      throw failure(error);
    }
    try {
      return JSON.stringify(result === undefined ? null : result);
    } catch (error) {
      throw failure({ errorType: 'Runtime.MarshalError', errorMessage: `Unable to marshal response: ${error.message}` });
    }
  };
}
