//! Property tests: any string, and any string built from VTL's tokens,
//! goes through parse and render without panicking; failures are errors
//! with a position and a message. (The fuzz suite, `host/tests/fuzz`, runs
//! more properties for longer.)

use proptest::prelude::*;
use serde_json::json;
use wasmgate_host::template::{Template, TemplateContext, TemplateInput};

#[path = "vtl_tokens.rs"]
mod vtl_tokens;
use vtl_tokens::TOKENS;

fn run(source: &str) {
    let template = match Template::parse(source) {
        Ok(template) => template,
        Err(e) => {
            assert!(e.line >= 1 && e.column >= 1 && !e.message.is_empty(), "{source:?}: {e:?}");
            return;
        }
    };
    let mut input = TemplateInput { body: r#"{"a": [1, {"b": "c"}], "s": "x"}"#.into(), ..TemplateInput::default() };
    input.path.insert("id".into(), "7".into());
    input.stage_variables.insert("s".into(), "v".into());
    let mut ctx = TemplateContext::new(json!({"requestId": "r"}));
    // Either result is fine; a panic fails the test.
    if let Err(e) = template.render(&input, &mut ctx) {
        assert!(e.line >= 1 && e.column >= 1 && !e.message.is_empty(), "{source:?}: {e:?}");
    }
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
