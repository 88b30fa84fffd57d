//! ItemsFunction: the seed's function. A static list of four items; an event
//! without `ID` gets the list, a known `ID` gets the item, anything else the
//! error `NotFoundError` (which API Gateway maps to 404 by its message).

use serde::Serialize;
use serde_json::Value;
use wasmgate_guest::{Context, Error};

#[derive(Serialize)]
struct Item {
    #[serde(rename = "ID")]
    id: i64,
    name: &'static str,
    price: f64,
}

static ITEMS: [Item; 4] = [
    Item { id: 1, name: "Pen", price: 2.5 },
    Item { id: 2, name: "Pencil", price: 1.5 },
    Item { id: 3, name: "Highlighter", price: 3.0 },
    Item { id: 4, name: "Ruler", price: 5.0 },
];

/// The answer: the whole list or one item, serialised straight from the
/// static data (no intermediate `Value`).
#[derive(Serialize)]
#[serde(untagged)]
enum Output {
    All(&'static [Item]),
    One(&'static Item),
}

fn handle(event: Value, _ctx: &Context) -> Result<Output, Error> {
    wasmgate_guest::log!("Event: {event}");
    let not_found = || Error::new("NotFoundError", "NotFoundError");
    let Some(id) = event.get("ID") else {
        return Ok(Output::All(&ITEMS));
    };
    // `{"ID": 2}` from a mapping template, or `{"ID": "2"}` from a string parameter.
    let id = match id {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse::<f64>().ok(),
        _ => None,
    }
    .ok_or_else(not_found)?;
    ITEMS.iter().find(|item| item.id as f64 == id).map(Output::One).ok_or_else(not_found)
}

wasmgate_guest::handler!(handle);
