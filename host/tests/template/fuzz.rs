//! Property tests: any string, and any string built from VTL's tokens,
//! goes through parse and render without panicking; failures are errors.

use proptest::prelude::*;
use serde_json::json;
use wasmgate_host::template::{Template, TemplateContext, TemplateInput};

/// Pieces of VTL, glued together at random.
const TOKENS: &[&str] = &[
    "#set(",
    "$a",
    "$b",
    "$!c",
    "${a}",
    "$a.b",
    "$a.size()",
    "$a[0]",
    "$a['k']",
    " = ",
    "(",
    ")",
    "[",
    "]",
    "{",
    "}",
    ",",
    ":",
    "..",
    "1",
    "-1",
    "2.5",
    "\"s$a\"",
    "'t'",
    "\"#if(true)x#end\"",
    "true",
    "false",
    "==",
    "!=",
    "<",
    ">=",
    "&&",
    "||",
    "!",
    " and ",
    " not ",
    "+",
    "-",
    "*",
    "/",
    "%",
    "#if(",
    "#elseif(",
    "#else",
    "#end",
    "#foreach(",
    " in ",
    "[1..3]",
    "#break",
    "#stop",
    "#define(",
    "#macro(m $x)",
    "#m(",
    "##",
    "#*",
    "*#",
    "#[[",
    "]]#",
    "\\",
    "\\$a",
    "\\#if",
    "$",
    "#",
    "\n",
    " ",
    "\t",
    "\r\n",
    "x",
    "$input.path('$.a')",
    "$input.json('$')",
    "$input.params('id')",
    "$input.body",
    "$util.escapeJavaScript($a)",
    "$util.parseJson($input.body)",
    "$util.base64Decode('eA==')",
    "$util.urlEncode($a)",
    "$context.requestId",
    "$context.responseOverride.status",
    "$stageVariables.s",
    "$foreach.hasNext",
    "$a.put('k', $a)",
    "$a.add($a)",
    "$a.substring(1, 2)",
    "{\"k\": 1}",
    "[1, 'x', [2]]",
    "$a.split(',')",
    "$a.replaceAll('.', '$0')",
];

fn run(source: &str) {
    let Ok(template) = Template::parse(source) else { return };
    let mut input = TemplateInput { body: r#"{"a": [1, {"b": "c"}], "s": "x"}"#.into(), ..TemplateInput::default() };
    input.path.insert("id".into(), "7".into());
    input.stage_variables.insert("s".into(), "v".into());
    let mut ctx = TemplateContext::new(json!({"requestId": "r"}));
    // Either result is fine; a panic fails the test.
    let _ = template.render(&input, &mut ctx);
    let _ = ctx.response_override_status();
    let _ = ctx.response_override_headers();
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_strings_never_panic(source in "\\PC*") {
        run(&source);
    }

    #[test]
    fn vtl_token_soup_never_panics(tokens in prop::collection::vec(prop::sample::select(TOKENS), 0..40)) {
        run(&tokens.concat());
    }

    #[test]
    fn templates_around_a_set_never_panic(
        pre in prop::collection::vec(prop::sample::select(TOKENS), 0..8),
        value in prop::collection::vec(prop::sample::select(TOKENS), 1..8),
        post in prop::collection::vec(prop::sample::select(TOKENS), 0..12),
    ) {
        run(&format!("{}#set($a = {}){}", pre.concat(), value.concat(), post.concat()));
    }
}

#[test]
fn byte_soup_near_directives_never_panics() {
    // Every prefix of a template that uses most of the language.
    let full = "#set($a = {\"k\": [1, 2.5, 'x']})#foreach($i in $a.k)#if($i == 1)$i#elseif($i > 2)\\$a#{else}${i}#end#end#macro(m $x)[$x]#end#m($a)#define($d)$a.k#end$d ## c\n#* c *#";
    for end in 0..=full.len() {
        if full.is_char_boundary(end) {
            run(&full[..end]);
        }
    }
}
