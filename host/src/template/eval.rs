//! The evaluator: renders a parsed template against a request, with
//! Velocity 1.7's semantics as API Gateway runs it:
//!
//! * a null or undefined reference renders as nothing, and inside an
//!   expression it evaluates to `""` (so `$missing == ""` and
//!   `$missing == $null` are both true, and `#if($missing)` is true);
//! * `#set` to a null value (a division by zero, a failed operation) leaves
//!   the variable as it was;
//! * `<`, `>`, `<=`, `>=` compare numbers only (anything else is false);
//!   `==` compares numbers by value, same-typed values with `equals` and
//!   other pairs by their strings;
//! * a Java exception in a method (`substring` out of range, a list index
//!   out of bounds, invalid JSON for `$util.parseJson`) fails the render.
//!
//! Limits keep a hostile template bounded: [`MAX_OUTPUT`] bytes of output,
//! [`MAX_FOREACH`] iterations per `#foreach` (API Gateway's limit; like
//! Velocity's `directive.foreach.maxloops`, later items are skipped),
//! [`MAX_STEPS`] evaluation steps and [`MAX_DEPTH`] nested macro and
//! `#define` calls.

use std::collections::HashMap;
use std::sync::Arc;

use indexmap::IndexMap;

use super::ast::{BinOp, Expr, Node, Part, Pos, Reference};
use super::value::{LoopState, Val};
use super::{RenderError, Template, TemplateContext, TemplateInput, apigw, methods};

/// Most output a template may produce (API Gateway's payload limit).
pub const MAX_OUTPUT: usize = 10 * 1024 * 1024;
/// Most iterations of one `#foreach` (API Gateway's limit); later items are skipped.
pub const MAX_FOREACH: usize = 1000;
/// Most evaluation steps (references, directives, loop iterations) of one render.
pub const MAX_STEPS: u64 = 1_000_000;
/// Deepest nesting of macro calls and `#define` blocks.
pub const MAX_DEPTH: u32 = 32;

/// The template's variables: few, so a vector searched in order beats hashing.
#[derive(Default)]
struct Vars(Vec<(Box<str>, Val)>);

impl Vars {
    fn get(&self, name: &str) -> Option<&Val> {
        self.0.iter().find(|(k, _)| &**k == name).map(|(_, v)| v)
    }

    fn contains_key(&self, name: &str) -> bool {
        self.get(name).is_some()
    }

    fn insert(&mut self, name: &str, value: Val) {
        match self.0.iter_mut().find(|(k, _)| &**k == name) {
            Some((_, slot)) => *slot = value,
            None => self.0.push((name.into(), value)),
        }
    }

    fn remove(&mut self, name: &str) {
        if let Some(i) = self.0.iter().position(|(k, _)| &**k == name) {
            self.0.swap_remove(i);
        }
    }
}

enum Flow {
    Normal,
    Break,
    Stop,
}

pub(super) struct Renderer<'a> {
    template: &'a Template,
    input: &'a TemplateInput,
    context: Val,
    stage_variables: Option<Val>,
    vars: Vars,
    defines: HashMap<String, Arc<Vec<Node>>>,
    out: String,
    steps: u64,
    /// Where the last step was: the position of errors that have none of their own.
    pos: Pos,
    depth: u32,
    loops: u32,
    pub(super) body_json: Option<Option<serde_json::Value>>,
    /// `$input.params()`, built on first use.
    pub(super) params: Option<Val>,
    /// The time slice: when it started, and how long it is.
    slice: Option<(std::time::Instant, std::time::Duration)>,
    /// What the render swallowed, when it is asked (`template render`);
    /// `None` on the request path.
    notes: Option<Vec<Note>>,
}

/// Something a render did without a word, as Velocity does: worth telling
/// whoever writes the template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Note {
    /// A `#foreach` stopped at [`MAX_FOREACH`] items, with more to go.
    ForeachCut { pos: Pos },
    /// A reference that is undefined or null rendered as nothing (one not
    /// written quiet, `$!name`, which asks for exactly that).
    Empty { pos: Pos, reference: String },
}

impl std::fmt::Display for Note {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Note::ForeachCut { pos } => write!(
                f,
                "line {}, column {}: #foreach stopped after {MAX_FOREACH} items (API Gateway's limit): the rest of the list was not rendered",
                pos.line, pos.column
            ),
            Note::Empty { pos, reference } => write!(
                f,
                "line {}, column {}: {reference} rendered as nothing (undefined or null)",
                pos.line, pos.column
            ),
        }
    }
}

impl<'a> Renderer<'a> {
    pub(super) fn new(
        template: &'a Template,
        input: &'a TemplateInput,
        ctx: &TemplateContext,
        slice: Option<std::time::Duration>,
    ) -> Self {
        Renderer {
            template,
            input,
            context: ctx.root.clone(),
            stage_variables: None,
            vars: Vars::default(),
            defines: HashMap::new(),
            out: String::with_capacity(template.source_len.min(4096) + 64),
            steps: 0,
            pos: Pos { line: 1, column: 1 },
            depth: 0,
            loops: 0,
            body_json: None,
            params: None,
            slice: slice.map(|slice| (std::time::Instant::now(), slice)),
            notes: None,
        }
    }

    /// Runs, and says what the render swallowed.
    pub(super) fn explained(mut self) -> Result<(String, Vec<Note>), RenderError> {
        self.notes = Some(Vec::new());
        self.nodes(&self.template.nodes)?;
        Ok((self.out, self.notes.unwrap_or_default()))
    }

    pub(super) fn input(&self) -> &TemplateInput {
        self.input
    }

    pub(super) fn run(mut self) -> Result<String, RenderError> {
        self.nodes(&self.template.nodes)?;
        Ok(self.out)
    }

    fn step(&mut self, pos: Pos) -> Result<(), RenderError> {
        self.steps += 1;
        self.pos = pos;
        if self.steps > MAX_STEPS {
            return Err(RenderError::at(pos, format!("the template took more than {MAX_STEPS} steps")));
        }
        if self.steps.is_multiple_of(256)
            && let Some((started, slice)) = self.slice
            && started.elapsed() >= slice
        {
            return Err(RenderError::slice_over(pos, slice));
        }
        self.check_output(pos)
    }

    fn check_output(&self, pos: Pos) -> Result<(), RenderError> {
        if self.out.len() > MAX_OUTPUT {
            return Err(RenderError::at(pos, format!("the output is larger than {MAX_OUTPUT} bytes")));
        }
        Ok(())
    }

    fn nodes(&mut self, nodes: &[Node]) -> Result<Flow, RenderError> {
        for node in nodes {
            match self.node(node)? {
                Flow::Normal => {}
                other => return Ok(other),
            }
        }
        Ok(Flow::Normal)
    }

    fn node(&mut self, node: &Node) -> Result<Flow, RenderError> {
        match node {
            Node::Text(t) => {
                self.out.push_str(t);
                self.check_output(self.pos)?;
            }
            Node::Ref { reference, escapes, raw } => {
                self.step(reference.pos)?;
                for _ in 0..escapes / 2 {
                    self.out.push('\\');
                }
                if escapes % 2 == 1 {
                    // An escaped reference prints as written.
                    self.out.push_str(raw);
                    return Ok(Flow::Normal);
                }
                if reference.parts.is_empty()
                    && !self.vars.contains_key(&reference.root)
                    && let Some(body) = self.defines.get(&reference.root).cloned()
                {
                    return match self.nested(reference.pos, |r| r.nodes(&body))? {
                        Flow::Stop => Ok(Flow::Stop),
                        _ => Ok(Flow::Normal),
                    };
                }
                match self.reference(reference)? {
                    None | Some(Val::Null) if !(raw.starts_with("$!") || raw.starts_with("${!")) => {
                        self.note(|| Note::Empty { pos: reference.pos, reference: raw.to_string() })
                    }
                    None | Some(Val::Null) => {}
                    Some(Val::Str(s)) => self.out.push_str(&s),
                    Some(other) => other.write_to(&mut self.out),
                }
                self.check_output(reference.pos)?;
            }
            Node::Set { target, value, pos } => {
                self.step(*pos)?;
                let v = self.expr(value)?;
                self.assign(target, v, *pos)?;
            }
            Node::If { branches, otherwise } => {
                for (cond, body) in branches {
                    if self.truth(cond)? {
                        return self.nodes(body);
                    }
                }
                if let Some(body) = otherwise {
                    return self.nodes(body);
                }
            }
            Node::Foreach { var, iterable, body, pos } => return self.foreach(var, iterable, body, *pos),
            // Outside a loop, #break leaves the template.
            Node::Break => return Ok(if self.loops == 0 { Flow::Stop } else { Flow::Break }),
            Node::Stop => return Ok(Flow::Stop),
            Node::Define { name, body } => {
                self.defines.insert(name.clone(), Arc::clone(body));
                self.vars.remove(name);
            }
            Node::MacroCall { name, args, pos, raw } => {
                self.step(*pos)?;
                let Some(m) = self.template.macros.get(name) else {
                    // Not a macro: Velocity prints the call as written.
                    self.out.push_str(raw);
                    return Ok(Flow::Normal);
                };
                let values: Vec<Val> = args.iter().map(|a| self.expr(a)).collect::<Result<_, _>>()?;
                let saved: Vec<(String, Option<Val>)> =
                    m.params.iter().map(|p| (p.clone(), self.vars.get(p).cloned())).collect();
                for (p, v) in m.params.iter().zip(values) {
                    self.vars.insert(p, v);
                }
                let body = Arc::clone(&m.body);
                let loops = std::mem::take(&mut self.loops);
                let flow = self.nested(*pos, |r| r.nodes(&body));
                self.loops = loops;
                for (p, old) in saved {
                    match old {
                        Some(v) => self.vars.insert(&p, v),
                        None => self.vars.remove(&p),
                    };
                }
                return match flow? {
                    Flow::Stop => Ok(Flow::Stop),
                    _ => Ok(Flow::Normal),
                };
            }
        }
        Ok(Flow::Normal)
    }

    fn nested(
        &mut self,
        pos: Pos,
        f: impl FnOnce(&mut Self) -> Result<Flow, RenderError>,
    ) -> Result<Flow, RenderError> {
        if self.depth >= MAX_DEPTH {
            return Err(RenderError::at(pos, format!("macros or #define blocks nest more than {MAX_DEPTH} deep")));
        }
        self.depth += 1;
        let flow = f(self);
        self.depth -= 1;
        flow
    }

    /// `#foreach` over a list (live, as Java's iterator: a structural change
    /// in the body ends the loop or fails with Java's
    /// ConcurrentModificationException), a map's values, or nothing.
    fn foreach(&mut self, var: &str, iterable: &Expr, body: &[Node], pos: Pos) -> Result<Flow, RenderError> {
        let source = self.expr(iterable)?;
        if !matches!(source, Val::List(_) | Val::Map(_)) {
            return Ok(Flow::Normal);
        }
        let saved_var = self.vars.get(var).cloned();
        let saved_foreach = self.vars.get("foreach").cloned();
        let saved_count = self.vars.get("velocityCount").cloned();
        let state = Arc::new(parking_lot::Mutex::new(LoopState::default()));
        let state_val = Val::Loop(Arc::clone(&state));
        self.loops += 1;
        let result = self.foreach_items(&source, var, body, pos, &state, &state_val);
        self.loops -= 1;
        for (name, old) in [(var, saved_var), ("foreach", saved_foreach), ("velocityCount", saved_count)] {
            match old {
                Some(v) => self.vars.insert(name, v),
                None => self.vars.remove(name),
            };
        }
        result
    }

    fn foreach_items(
        &mut self,
        source: &Val,
        var: &str,
        body: &[Node],
        pos: Pos,
        state: &parking_lot::Mutex<LoopState>,
        state_val: &Val,
    ) -> Result<Flow, RenderError> {
        let len_of = |v: &Val| match v {
            Val::List(l) => l.lock().items.len(),
            Val::Map(m) => m.lock().len(),
            _ => 0,
        };
        for index in 0..MAX_FOREACH {
            let item = match source {
                Val::List(l) => l.lock().items.get(index).cloned(),
                Val::Map(m) => m.lock().get_index(index).map(|(_, v)| v.clone()),
                _ => None,
            };
            let Some(item) = item else { break };
            let len = len_of(source);
            self.step(pos)?;
            *state.lock() = LoopState { index, total: len };
            self.vars.insert("foreach", state_val.clone());
            self.vars.insert("velocityCount", Val::Int(index as i64 + 1));
            if item.is_null() {
                self.vars.remove(var);
            } else {
                self.vars.insert(var, item);
            }
            match self.nodes(body)? {
                Flow::Normal => {}
                Flow::Break => break,
                Flow::Stop => return Ok(Flow::Stop),
            }
            let now = len_of(source);
            if now != len {
                // Java's iterators: a list's ends when its cursor meets the new
                // size, a map's when the changed entry was the last; otherwise
                // the next step throws.
                let ends = match source {
                    Val::List(_) => index + 1 == now,
                    _ => index + 1 >= len,
                };
                if ends {
                    break;
                }
                return Err(RenderError::at(pos, "java.util.ConcurrentModificationException"));
            }
            if index + 1 == MAX_FOREACH && len_of(source) > MAX_FOREACH {
                self.note(|| Note::ForeachCut { pos });
            }
        }
        Ok(Flow::Normal)
    }

    /// Records what a template swallowed, when asked to ([`Renderer::explained`]).
    fn note(&mut self, note: impl FnOnce() -> Note) {
        if let Some(notes) = &mut self.notes {
            notes.push(note());
        }
    }

    /// Evaluates a reference: `None` when it is undefined or a look-up failed.
    fn reference(&mut self, r: &Reference) -> Result<Option<Val>, RenderError> {
        let mut current = match self.vars.get(&r.root) {
            Some(v) => v.clone(),
            None => match r.root.as_str() {
                "input" => return apigw::input(self, &r.parts, r.pos),
                "util" => return apigw::util(self, &r.parts, r.pos),
                "context" => self.context.clone(),
                "stageVariables" => self.stage_variables(),
                name => match self.defines.get(name).cloned() {
                    Some(body) => {
                        let saved = std::mem::take(&mut self.out);
                        let flow = self.nested(r.pos, |me| me.nodes(&body));
                        let rendered = std::mem::replace(&mut self.out, saved);
                        flow?;
                        Val::str(rendered)
                    }
                    None => return Ok(None),
                },
            },
        };
        for part in &r.parts {
            match self.part(&current, part, r.pos)? {
                Some(v) => current = v,
                None => return Ok(None),
            }
        }
        Ok(Some(current))
    }

    fn stage_variables(&mut self) -> Val {
        let input = self.input;
        self.stage_variables
            .get_or_insert_with(|| {
                Val::new_map(input.stage_variables.iter().map(|(k, v)| (k.clone(), Val::str(v.as_str()))).collect())
            })
            .clone()
    }

    pub(super) fn part(&mut self, target: &Val, part: &Part, pos: Pos) -> Result<Option<Val>, RenderError> {
        match part {
            Part::Property(name) => Ok(methods::property(target, name)),
            Part::Index(e) => {
                let key = self.expr(e)?;
                methods::index(target, &key).map_err(|m| RenderError::at(pos, m))
            }
            Part::Method(name, args) => {
                // Most calls have at most two arguments: no allocation for them.
                if args.len() <= 2 {
                    let mut values: [Val; 2] = Default::default();
                    for (slot, a) in values.iter_mut().zip(args) {
                        *slot = self.expr(a)?;
                    }
                    return methods::call(target, name, &values[..args.len()]).map_err(|m| RenderError::at(pos, m));
                }
                let args: Vec<Val> = args.iter().map(|a| self.expr(a)).collect::<Result<_, _>>()?;
                methods::call(target, name, &args).map_err(|m| RenderError::at(pos, m))
            }
        }
    }

    fn assign(&mut self, target: &Reference, value: Val, pos: Pos) -> Result<(), RenderError> {
        // Velocity 1.7: setting null leaves the variable as it was.
        if value.is_null() {
            return Ok(());
        }
        let Some((last, init)) = target.parts.split_last() else {
            self.vars.insert(&target.root, value);
            return Ok(());
        };
        let container = if init.is_empty() {
            match self.vars.get(&target.root) {
                Some(v) => Some(v.clone()),
                None => match target.root.as_str() {
                    "context" => Some(self.context.clone()),
                    "stageVariables" => Some(self.stage_variables()),
                    _ => None,
                },
            }
        } else {
            self.reference(&Reference { root: target.root.clone(), parts: init.to_vec(), pos: target.pos })?
        };
        let Some(container) = container else { return Ok(()) };
        match (last, &container) {
            (Part::Property(name), Val::Map(m)) => {
                m.lock().insert(name.clone(), value);
            }
            (Part::Index(e), Val::Map(m)) => {
                let key = self.expr(e)?;
                m.lock().insert(methods::key_string(&key).into_owned(), value);
            }
            (Part::Index(e), Val::List(l)) => {
                if let Val::Int(i) = self.expr(e)? {
                    let mut list = l.lock();
                    let len = list.items.len() as i64;
                    let at = if i < 0 { i + len } else { i };
                    match usize::try_from(at).ok().and_then(|at| list.items.get_mut(at)) {
                        Some(slot) => *slot = value,
                        None => {
                            return Err(RenderError::at(pos, format!("Index {i} out of bounds for length {len}")));
                        }
                    }
                }
            }
            _ => {}
        }
        Ok(())
    }

    /// Evaluates an expression. A null or undefined reference evaluates to
    /// `""`, as in API Gateway's Velocity.
    pub(super) fn expr(&mut self, e: &Expr) -> Result<Val, RenderError> {
        Ok(match e {
            Expr::Literal(v) => v.clone(),
            Expr::Word(w) => Val::str(w.as_str()),
            Expr::Interpolated(nodes) => {
                let saved = std::mem::take(&mut self.out);
                let flow = self.nodes(nodes);
                let rendered = std::mem::replace(&mut self.out, saved);
                flow?;
                Val::str(rendered)
            }
            Expr::Ref(r) => {
                if r.parts.is_empty()
                    && !self.vars.contains_key(&r.root)
                    && let Some(body) = self.defines.get(&r.root).cloned()
                {
                    let saved = std::mem::take(&mut self.out);
                    let flow = self.nested(r.pos, |me| me.nodes(&body));
                    let rendered = std::mem::replace(&mut self.out, saved);
                    flow?;
                    return Ok(Val::str(rendered));
                }
                match self.reference(r)? {
                    None | Some(Val::Null) => Val::empty_str(),
                    Some(v) => v,
                }
            }
            Expr::List(items) => Val::new_list(items.iter().map(|i| self.expr(i)).collect::<Result<_, _>>()?, false),
            Expr::Map(entries) => {
                let mut map = IndexMap::with_capacity(entries.len());
                for (k, v) in entries {
                    let key = methods::key_string(&self.expr(k)?).into_owned();
                    let value = self.expr(v)?;
                    map.insert(key, value);
                }
                Val::new_map(map)
            }
            Expr::Range(a, b) => {
                let (a, b) = (self.expr(a)?, self.expr(b)?);
                let (Some(a), Some(b)) = (int_of(&a), int_of(&b)) else { return Ok(Val::Null) };
                // More than a #foreach can use is never needed.
                let cap = MAX_FOREACH + 1;
                let items: Vec<Val> = if a <= b {
                    (a..=b).take(cap).map(Val::Int).collect()
                } else {
                    (b..=a).rev().take(cap).map(Val::Int).collect()
                };
                Val::new_list(items, false)
            }
            Expr::Not(_) | Expr::Binary(BinOp::And | BinOp::Or, _, _) => Val::Bool(self.truth(e)?),
            Expr::Add(a, b, texts) => {
                let (mut a, mut b) = (self.expr(a)?, self.expr(b)?);
                // A string plus a failed operand: Velocity uses the operand's source text.
                if matches!(b, Val::Str(_)) && a.is_null() {
                    a = Val::str(&*texts.0);
                } else if matches!(a, Val::Str(_)) && b.is_null() {
                    b = Val::str(&*texts.1);
                }
                let v = binary(BinOp::Add, &a, &b);
                if let Val::Str(s) = &v
                    && s.len() > MAX_OUTPUT
                {
                    return Err(RenderError::at(self.pos, format!("a string is longer than {MAX_OUTPUT} bytes")));
                }
                v
            }
            Expr::Binary(op, a, b) => {
                let (a, b) = (self.expr(a)?, self.expr(b)?);
                let v = binary(*op, &a, &b);
                if let Val::Str(s) = &v
                    && s.len() > MAX_OUTPUT
                {
                    return Err(RenderError::at(self.pos, format!("a string is longer than {MAX_OUTPUT} bytes")));
                }
                v
            }
        })
    }
}

impl Renderer<'_> {
    /// An expression as a condition (`#if`, `&&`, `||`, `!`), as Velocity 1.7
    /// evaluates it: a reference by its value (null and `false` are false),
    /// `true`/`false` and comparisons by their result, and every other
    /// literal or arithmetic expression as false, without evaluating it.
    fn truth(&mut self, e: &Expr) -> Result<bool, RenderError> {
        Ok(match e {
            Expr::Ref(_) => self.expr(e)?.truthy(),
            Expr::Literal(Val::Bool(b)) => *b,
            Expr::Not(inner) => !self.truth(inner)?,
            Expr::Binary(BinOp::And, a, b) => self.truth(a)? && self.truth(b)?,
            Expr::Binary(BinOp::Or, a, b) => self.truth(a)? || self.truth(b)?,
            Expr::Binary(BinOp::Eq | BinOp::Ne | BinOp::Lt | BinOp::Le | BinOp::Gt | BinOp::Ge, _, _) => {
                self.expr(e)?.truthy()
            }
            Expr::Binary(..)
            | Expr::Add(..)
            | Expr::Literal(_)
            | Expr::Interpolated(_)
            | Expr::List(_)
            | Expr::Map(_)
            | Expr::Range(..)
            | Expr::Word(_) => false,
        })
    }
}

fn int_of(v: &Val) -> Option<i64> {
    match v {
        Val::Int(i) => Some(*i),
        Val::Double(d) => Some(*d as i64),
        // Velocity's ranges take numbers only.
        _ => None,
    }
}

/// Velocity 1.7's `==`: numbers by value, values of one type with
/// `equals`, other pairs by their `toString()`; null equals only null.
pub(super) fn equals(a: &Val, b: &Val) -> bool {
    match (a, b) {
        // A null here is a failed operation (references are `""`): equal only to another.
        (Val::Null, Val::Null) => true,
        (Val::Null, _) | (_, Val::Null) => false,
        _ => {
            if let (Some(x), Some(y)) = (a.as_number(), b.as_number()) {
                return match (a, b) {
                    (Val::Int(i), Val::Int(j)) => i == j,
                    _ => x == y,
                };
            }
            if std::mem::discriminant(a) == std::mem::discriminant(b) {
                return a == b;
            }
            a.render() == b.render()
        }
    }
}

fn binary(op: BinOp, a: &Val, b: &Val) -> Val {
    match op {
        BinOp::Eq => return Val::Bool(equals(a, b)),
        BinOp::Ne => return Val::Bool(!equals(a, b)),
        BinOp::Lt | BinOp::Le | BinOp::Gt | BinOp::Ge => {
            let ord = match (a, b) {
                (Val::Int(x), Val::Int(y)) => Some(x.cmp(y)),
                _ => match (a.as_number(), b.as_number()) {
                    (Some(x), Some(y)) => x.partial_cmp(&y),
                    // Velocity compares numbers only.
                    _ => None,
                },
            };
            let Some(ord) = ord else { return Val::Bool(false) };
            return Val::Bool(match op {
                BinOp::Lt => ord.is_lt(),
                BinOp::Le => ord.is_le(),
                BinOp::Gt => ord.is_gt(),
                _ => ord.is_ge(),
            });
        }
        _ => {}
    }
    match (a, b) {
        (Val::Int(x), Val::Int(y)) => {
            let (x, y) = (*x, *y);
            match op {
                // Java widens to BigInteger on long overflow; this falls back to a double.
                BinOp::Add => x.checked_add(y).map_or(Val::Double(x as f64 + y as f64), Val::Int),
                BinOp::Sub => x.checked_sub(y).map_or(Val::Double(x as f64 - y as f64), Val::Int),
                BinOp::Mul => x.checked_mul(y).map_or(Val::Double(x as f64 * y as f64), Val::Int),
                BinOp::Div => x.checked_div(y).map_or(Val::Null, Val::Int),
                BinOp::Mod => x.checked_rem(y).map_or(Val::Null, Val::Int),
                _ => Val::Null,
            }
        }
        _ => match (a.as_number(), b.as_number()) {
            (Some(x), Some(y)) => match op {
                BinOp::Add => Val::Double(x + y),
                BinOp::Sub => Val::Double(x - y),
                BinOp::Mul => Val::Double(x * y),
                BinOp::Div | BinOp::Mod if y == 0.0 => Val::Null,
                BinOp::Div => Val::Double(x / y),
                BinOp::Mod => Val::Double(x % y),
                _ => Val::Null,
            },
            // `+` with a string on either side concatenates.
            _ if op == BinOp::Add && (matches!(a, Val::Str(_)) || matches!(b, Val::Str(_))) => {
                let mut s = a.render();
                b.write_to(&mut s);
                Val::str(s)
            }
            _ => Val::Null,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn java_arithmetic() {
        assert_eq!(binary(BinOp::Div, &Val::Int(7), &Val::Int(2)), Val::Int(3));
        assert_eq!(binary(BinOp::Mul, &Val::Int(2), &Val::Double(1.5)), Val::Double(3.0));
        assert_eq!(binary(BinOp::Div, &Val::Int(1), &Val::Int(0)), Val::Null);
        assert_eq!(binary(BinOp::Add, &Val::str("foo"), &Val::Int(1)).render(), "foo1");
        assert!(equals(&Val::Int(1), &Val::Double(1.0)));
        assert!(equals(&Val::Int(1), &Val::str("1")));
        assert!(!equals(&Val::Null, &Val::str("")));
        assert!(equals(&Val::Null, &Val::Null));
        assert_eq!(binary(BinOp::Lt, &Val::str("a"), &Val::str("b")), Val::Bool(false));
    }
}
