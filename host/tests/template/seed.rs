//! The seed project's three templates produce exactly what API Gateway
//! (the Velocity 1.7 reference renderer) produces for them.

use wasmgate_host::template::{Template, TemplateContext, TemplateInput};

/// The mock response of `GET /items` (the console's example, wrapped in `[` `]`).
pub const ITEMS_MOCK: &str = r#"[
#foreach($ID in [1, 2, 3])
#set($price = $ID * 1.5)
#set($name = "foo" + $ID)
{ "ID" : $ID, "name" : "$name", "price" : $price }#if($foreach.hasNext),#end
#end
]"#;

/// The mock response of `GET /items/{ID}`: the path parameter is a string,
/// so it is turned into a number with `Integer.parseInt`, called through an
/// Integer (Velocity 1.7 has no other way: `0 + $id` concatenates).
pub const ITEM_MOCK: &str = r#"#set($id = $input.params('ID'))
#set($Integer = 0)
#set($n = $Integer.parseInt($id))
#set($price = $n * 1.5)
{
  "ID" : $n,
  "name" : "foo$n",
  "price" : $price
}"#;

/// The request template of the Lambda (AWS) integration.
pub const FUNCTION_REQUEST: &str = r#"{ "ID": $input.params("ID") }"#;

fn render(source: &str, path_id: Option<&str>) -> String {
    let mut input = TemplateInput::default();
    if let Some(id) = path_id {
        input.path.insert("ID".into(), id.into());
    }
    let mut ctx = TemplateContext::new(serde_json::json!({}));
    Template::parse(source).expect("parses").render(&input, &mut ctx).expect("renders")
}

#[test]
fn items_mock_response() {
    // The `#end` of `#if` eats the newline after it, so the items share a line.
    assert_eq!(
        render(ITEMS_MOCK, None),
        "[\n{ \"ID\" : 1, \"name\" : \"foo1\", \"price\" : 1.5 },{ \"ID\" : 2, \"name\" : \"foo2\", \"price\" : 3.0 },{ \"ID\" : 3, \"name\" : \"foo3\", \"price\" : 4.5 }]"
    );
}

#[test]
fn item_mock_response() {
    assert_eq!(render(ITEM_MOCK, Some("3")), "{\n  \"ID\" : 3,\n  \"name\" : \"foo3\",\n  \"price\" : 4.5\n}");
}

#[test]
fn item_mock_with_a_non_numeric_id_fails() {
    let t = Template::parse(ITEM_MOCK).unwrap();
    let mut input = TemplateInput::default();
    input.path.insert("ID".into(), "abc".into());
    let err = t.render(&input, &mut TemplateContext::new(serde_json::json!({}))).unwrap_err();
    assert_eq!((err.line, err.column), (3, 11));
    assert!(err.message.contains("NumberFormatException"), "{err}");
}

#[test]
fn function_request_template() {
    assert_eq!(render(FUNCTION_REQUEST, Some("1")), r#"{ "ID": 1 }"#);
}
