//! Mapping-template rendering: the seed project's three templates and a
//! realistic bigger one (a Lambda request template that copies the
//! request's context, parameters and body), each parsed once outside the
//! measured loop, as the gateway does per deployment. Target: under 5 µs.

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use wasmgate_host::template::{Template, TemplateContext, TemplateInput};

const ITEMS_MOCK: &str = r#"[
#foreach($ID in [1, 2, 3])
#set($price = $ID * 1.5)
#set($name = "foo" + $ID)
{ "ID" : $ID, "name" : "$name", "price" : $price }#if($foreach.hasNext),#end
#end
]"#;

const ITEM_MOCK: &str = r#"#set($id = $input.params('ID'))
#set($Integer = 0)
#set($n = $Integer.parseInt($id))
#set($price = $n * 1.5)
{
  "ID" : $n,
  "name" : "foo$n",
  "price" : $price
}"#;

const FUNCTION_REQUEST: &str = r#"{ "ID": $input.params("ID") }"#;

const LAMBDA_REQUEST: &str = r#"#set($allParams = $input.params())
{
"body-json" : $input.json('$'),
"params" : {
#foreach($type in $allParams.keySet())
    #set($params = $allParams.get($type))
"$type" : {
    #foreach($paramName in $params.keySet())
    "$paramName" : "$util.escapeJavaScript($params.get($paramName))"
        #if($foreach.hasNext),#end
    #end
}
    #if($foreach.hasNext),#end
#end
},
"stage-variables" : {
#foreach($key in $stageVariables.keySet())
"$key" : "$util.escapeJavaScript($stageVariables.get($key))"
    #if($foreach.hasNext),#end
#end
},
"context" : {
    "account-id" : "$context.identity.accountId",
    "api-id" : "$context.apiId",
    "http-method" : "$context.httpMethod",
    "request-id" : "$context.requestId",
    "resource-path" : "$context.resourcePath",
    "source-ip" : "$context.identity.sourceIp",
    "stage" : "$context.stage",
    "user-agent" : "$context.identity.userAgent"
    }
}
"#;

fn input() -> TemplateInput {
    let mut input = TemplateInput {
        body: r#"{"name": "widget", "tags": ["a", "b"], "price": 4.5, "meta": {"color": "red", "size": 3}}"#.into(),
        ..TemplateInput::default()
    };
    input.path.insert("ID".into(), "3".into());
    input.querystring.insert("verbose".into(), "true".into());
    for (k, v) in [
        ("Accept", "application/json"),
        ("Content-Type", "application/json"),
        ("User-Agent", "curl/8.5"),
        ("X-Trace", "abc-123"),
    ] {
        input.header.insert(k.into(), v.into());
    }
    input.stage_variables.insert("env".into(), "prod".into());
    input
}

fn context() -> serde_json::Value {
    serde_json::json!({
        "requestId": "c6af9ac6-7b61-11e6-9a41-93e8deadbeef", "apiId": "abc123", "httpMethod": "GET",
        "resourcePath": "/items/{ID}", "stage": "prod",
        "identity": {"accountId": "123456789012", "sourceIp": "203.0.113.7", "userAgent": "curl/8.5"}
    })
}

fn render(c: &mut Criterion) {
    let input = input();
    let ctx = context();
    let mut group = c.benchmark_group("template_render");
    for (name, source) in [
        ("items_mock", ITEMS_MOCK),
        ("item_mock", ITEM_MOCK),
        ("function_request", FUNCTION_REQUEST),
        ("lambda_request_big", LAMBDA_REQUEST),
    ] {
        let template = Template::parse(source).expect("the bench templates parse");
        // A request's `$context` is built by the gateway, outside the render
        // (measured on its own below); these templates do not change it.
        let mut context = TemplateContext::new(ctx.clone());
        group.bench_function(name, |b| {
            b.iter(|| black_box(template.render(black_box(&input), &mut context).expect("renders")))
        });
    }
    group.finish();
}

fn context_new(c: &mut Criterion) {
    let ctx = context();
    c.bench_function("template_context_new", |b| b.iter(|| TemplateContext::new(black_box(ctx.clone()))));
}

fn parse(c: &mut Criterion) {
    c.bench_function("template_parse/lambda_request_big", |b| b.iter(|| Template::parse(black_box(LAMBDA_REQUEST))));
}

criterion_group!(benches, render, context_new, parse);
criterion_main!(benches);
