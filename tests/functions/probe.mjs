// A JavaScript function for wasmgate's tests: what Lambda's context holds,
// an outbound request with fetch, and an error of its own class.
class ItemMissing extends Error {
  constructor(message) {
    super(message);
    this.name = 'ItemMissing';
  }
}

export async function handler(event, context) {
  switch (event.op) {
    case 'context':
      return {
        awsRequestId: context.awsRequestId,
        functionName: context.functionName,
        functionVersion: context.functionVersion,
        invokedFunctionArn: context.invokedFunctionArn,
        memoryLimitInMB: context.memoryLimitInMB,
        logGroupName: context.logGroupName,
        logStreamName: context.logStreamName,
        remainingMs: context.getRemainingTimeInMillis(),
      };
    case 'fetch':
      try {
        const response = await fetch(event.url, { method: event.method ?? 'GET', body: event.body });
        return { status: response.status, body: await response.text() };
      } catch (error) {
        return { error: String(error) };
      }
    case 'raise':
      throw new ItemMissing(`no item ${event.id}`);
    default:
      return event;
  }
}
