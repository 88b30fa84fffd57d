//! The evaluator: renders a parsed template against a request, with
//! Velocity 1.7's semantics as API Gateway runs it (a null or undefined
//! reference renders as nothing and evaluates to `""`; `#set` to null leaves
//! the variable as it was), within limits on output, loop iterations, steps
//! and recursion.

use std::collections::HashMap;
use std::sync::Arc;

use indexmap::IndexMap;

use super::ast::{BinOp, Expr, Node, Part, Pos, Reference};
use super::value::Val;
use super::{RenderError, Template, TemplateContext, TemplateInput, apigw, methods};

/// Most output a template may produce.
pub const MAX_OUTPUT: usize = 10 * 1024 * 1024;
/// Most iterations of one `#foreach` (API Gateway's limit); later items are skipped.
pub const MAX_FOREACH: usize = 1000;
/// Most evaluation steps of one render.
pub const MAX_STEPS: u64 = 2_000_000;
/// Deepest macro recursion.
pub const MAX_DEPTH: u32 = 64;

enum Flow {
    Normal,
    Break,
    Stop,
}

pub(super) struct Renderer<'a> {
    template: &'a Template,
    input: &'a TemplateInput,
    context: Val,
    stage_variables: Val,
    vars: HashMap<String, Val>,
    defines: HashMap<String, Arc<Vec<Node>>>,
    out: String,
    steps: u64,
    depth: u32,
    pub(super) body_json: Option<Option<serde_json::Value>>,
}

impl<'a> Renderer<'a> {
    pub(super) fn new(template: &'a Template, input: &'a TemplateInput, ctx: &TemplateContext) -> Self {
        let stage_variables =
            Val::new_map(input.stage_variables.iter().map(|(k, v)| (k.clone(), Val::str(v.as_str()))).collect());
        Renderer {
            template,
            input,
            context: ctx.root.clone(),
            stage_variables,
            vars: HashMap::new(),
            defines: HashMap::new(),
            out: String::with_capacity(template.source_len.min(4096) + 64),
            steps: 0,
            depth: 0,
            body_json: None,
        }
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
        if self.steps > MAX_STEPS {
            return Err(RenderError::at(pos, "the template took too many steps"));
        }
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
                if self.out.len() > MAX_OUTPUT {
                    return Err(RenderError::at(
                        Pos::default(),
                        format!("the output is larger than {MAX_OUTPUT} bytes"),
                    ));
                }
            }
            Node::Ref { reference, .. } => {
                self.step(reference.pos)?;
                if reference.parts.is_empty()
                    && let Some(body) = self.defines.get(&reference.root).cloned()
                {
                    return self.nested(reference.pos, |r| r.nodes(&body));
                }
                if let Some(v) = self.reference(reference)? {
                    match v {
                        Val::Null => {}
                        Val::Str(s) => self.out.push_str(&s),
                        other => self.out.push_str(&other.render()),
                    }
                }
            }
            Node::Set { target, value, pos } => {
                self.step(*pos)?;
                let v = self.expr(value)?;
                self.assign(target, v, *pos)?;
            }
            Node::If { branches, otherwise } => {
                for (cond, body) in branches {
                    if self.expr(cond)?.truthy() {
                        return self.nodes(body);
                    }
                }
                if let Some(body) = otherwise {
                    return self.nodes(body);
                }
            }
            Node::Foreach { var, iterable, body, pos } => return self.foreach(var, iterable, body, *pos),
            Node::Break => return Ok(Flow::Break),
            Node::Stop => return Ok(Flow::Stop),
            Node::Define { name, body } => {
                self.defines.insert(name.clone(), Arc::new(body.clone()));
            }
            Node::MacroCall { name, args, pos } => {
                self.step(*pos)?;
                let Some(m) = self.template.macros.get(name) else {
                    // Not a macro: Velocity prints the call as written.
                    self.out.push('#');
                    self.out.push_str(name);
                    return Ok(Flow::Normal);
                };
                let values: Vec<Val> = args.iter().map(|a| self.expr(a)).collect::<Result<_, _>>()?;
                let saved: Vec<(String, Option<Val>)> =
                    m.params.iter().map(|p| (p.clone(), self.vars.get(p).cloned())).collect();
                for (p, v) in m.params.iter().zip(values) {
                    self.vars.insert(p.clone(), v);
                }
                let flow = self.nested(*pos, |r| r.nodes(&m.body));
                for (p, old) in saved {
                    match old {
                        Some(v) => self.vars.insert(p, v),
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
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(RenderError::at(pos, "macros or #define blocks nest too deeply"));
        }
        let flow = f(self);
        self.depth -= 1;
        flow
    }

    fn foreach(&mut self, var: &str, iterable: &Expr, body: &[Node], pos: Pos) -> Result<Flow, RenderError> {
        let items: Vec<Val> = match self.expr(iterable)? {
            Val::List(l) => l.lock().items.clone(),
            Val::Map(m) => m.lock().values().cloned().collect(),
            _ => Vec::new(),
        };
        let saved_var = self.vars.get(var).cloned();
        let saved_foreach = self.vars.get("foreach").cloned();
        let saved_count = self.vars.get("velocityCount").cloned();
        let total = items.len().min(MAX_FOREACH);
        let mut flow = Flow::Normal;
        for (index, item) in items.into_iter().take(MAX_FOREACH).enumerate() {
            self.step(pos)?;
            let mut state = IndexMap::new();
            state.insert("index".to_string(), Val::Int(index as i64));
            state.insert("count".to_string(), Val::Int(index as i64 + 1));
            state.insert("hasNext".to_string(), Val::Bool(index + 1 < total));
            state.insert("first".to_string(), Val::Bool(index == 0));
            state.insert("last".to_string(), Val::Bool(index + 1 == total));
            self.vars.insert("foreach".into(), Val::new_map(state));
            self.vars.insert("velocityCount".into(), Val::Int(index as i64 + 1));
            if item.is_null() {
                self.vars.remove(var);
            } else {
                self.vars.insert(var.to_string(), item);
            }
            match self.nodes(body)? {
                Flow::Normal => {}
                Flow::Break => break,
                Flow::Stop => {
                    flow = Flow::Stop;
                    break;
                }
            }
        }
        for (name, old) in [(var, saved_var), ("foreach", saved_foreach), ("velocityCount", saved_count)] {
            match old {
                Some(v) => self.vars.insert(name.to_string(), v),
                None => self.vars.remove(name),
            };
        }
        Ok(flow)
    }

    /// Evaluates a reference: `None` when it is undefined or a look-up failed.
    fn reference(&mut self, r: &Reference) -> Result<Option<Val>, RenderError> {
        let mut current = match r.root.as_str() {
            "input" if !self.vars.contains_key("input") => {
                return apigw::input(self, &r.parts, r.pos);
            }
            "util" if !self.vars.contains_key("util") => {
                return apigw::util(self, &r.parts, r.pos);
            }
            "context" => self.context.clone(),
            "stageVariables" => self.stage_variables.clone(),
            name => match self.vars.get(name) {
                Some(v) => v.clone(),
                None => match self.defines.get(name).cloned() {
                    Some(body) => {
                        let mut sub = String::new();
                        std::mem::swap(&mut sub, &mut self.out);
                        let flow = self.nested(r.pos, |me| me.nodes(&body));
                        std::mem::swap(&mut sub, &mut self.out);
                        flow?;
                        Val::str(sub)
                    }
                    None => return Ok(None),
                },
            },
        };
        for part in &r.parts {
            let next = self.part(&current, part, r.pos)?;
            match next {
                Some(v) => current = v,
                None => return Ok(None),
            }
        }
        Ok(Some(current))
    }

    pub(super) fn part(&mut self, target: &Val, part: &Part, pos: Pos) -> Result<Option<Val>, RenderError> {
        match part {
            Part::Property(name) => Ok(methods::property(target, name)),
            Part::Index(e) => {
                let key = self.expr(e)?;
                Ok(methods::index(target, &key))
            }
            Part::Method(name, args) => {
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
            self.vars.insert(target.root.clone(), value);
            return Ok(());
        };
        let container =
            self.reference(&Reference { root: target.root.clone(), parts: init.to_vec(), pos: target.pos })?;
        let Some(container) = container else { return Ok(()) };
        match (last, &container) {
            (Part::Property(name), Val::Map(m)) => {
                m.lock().insert(name.clone(), value);
            }
            (Part::Index(e), Val::Map(m)) => {
                let key = self.expr(e)?;
                m.lock().insert(methods::key_string(&key), value);
            }
            (Part::Index(e), Val::List(l)) => {
                let index = self.expr(e)?;
                if let Val::Int(i) = index {
                    let mut list = l.lock();
                    let len = list.items.len() as i64;
                    if (0..len).contains(&i) {
                        list.items[i as usize] = value;
                    } else {
                        return Err(RenderError::at(pos, format!("index {i} out of bounds for a list of {len}")));
                    }
                }
            }
            _ => {}
        }
        Ok(())
    }

    /// Evaluates an expression. An undefined reference evaluates to `""` (as
    /// API Gateway's Velocity does).
    pub(super) fn expr(&mut self, e: &Expr) -> Result<Val, RenderError> {
        Ok(match e {
            Expr::Literal(v) => v.clone(),
            Expr::Interpolated(nodes) => {
                let mut sub = String::new();
                std::mem::swap(&mut sub, &mut self.out);
                let flow = self.nodes(nodes);
                std::mem::swap(&mut sub, &mut self.out);
                flow?;
                Val::str(sub)
            }
            Expr::Ref(r) => self.reference(r)?.unwrap_or_else(Val::empty_str),
            Expr::List(items) => Val::new_list(items.iter().map(|i| self.expr(i)).collect::<Result<_, _>>()?, false),
            Expr::Map(entries) => {
                let mut map = IndexMap::new();
                for (k, v) in entries {
                    let key = methods::key_string(&self.expr(k)?);
                    let value = self.expr(v)?;
                    map.insert(key, value);
                }
                Val::new_map(map)
            }
            Expr::Range(a, b) => {
                let (a, b) = (self.expr(a)?, self.expr(b)?);
                let (Some(a), Some(b)) = (int_of(&a), int_of(&b)) else { return Ok(Val::Null) };
                let items: Vec<Val> = if a <= b {
                    (a..=b).take(MAX_FOREACH + 1).map(Val::Int).collect()
                } else {
                    (b..=a).rev().take(MAX_FOREACH + 1).map(Val::Int).collect()
                };
                Val::new_list(items, false)
            }
            Expr::Not(inner) => Val::Bool(!self.expr(inner)?.truthy()),
            Expr::Neg(inner) => match self.expr(inner)? {
                Val::Int(i) => Val::Int(i.wrapping_neg()),
                Val::Double(d) => Val::Double(-d),
                _ => Val::Null,
            },
            Expr::Binary(BinOp::And, a, b) => Val::Bool(self.expr(a)?.truthy() && self.expr(b)?.truthy()),
            Expr::Binary(BinOp::Or, a, b) => Val::Bool(self.expr(a)?.truthy() || self.expr(b)?.truthy()),
            Expr::Binary(op, a, b) => {
                let (a, b) = (self.expr(a)?, self.expr(b)?);
                binary(*op, &a, &b)
            }
        })
    }
}

fn int_of(v: &Val) -> Option<i64> {
    match v {
        Val::Int(i) => Some(*i),
        Val::Double(d) => Some(*d as i64),
        Val::Str(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// Velocity 1.7's equality: numbers by value, same types by equals, other
/// pairs by their string forms; null is treated as an empty string (API
/// Gateway's null handling).
fn equals(a: &Val, b: &Val) -> bool {
    match (a, b) {
        (Val::Null, Val::Null) => true,
        (Val::Null, other) | (other, Val::Null) => matches!(other, Val::Str(s) if s.is_empty()),
        _ => {
            if let (Some(x), Some(y)) = (a.as_number(), b.as_number()) {
                return x == y;
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
            let ord = match (a.as_number(), b.as_number()) {
                (Some(x), Some(y)) => x.partial_cmp(&y),
                _ => match (a, b) {
                    (Val::Str(x), Val::Str(y)) => Some(x.cmp(y)),
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
    // `+` with a string on either side concatenates.
    if op == BinOp::Add && (matches!(a, Val::Str(_)) || matches!(b, Val::Str(_))) {
        let (x, y) = (
            if a.is_null() { String::new() } else { a.render() },
            if b.is_null() { String::new() } else { b.render() },
        );
        return Val::str(x + &y);
    }
    match (a, b) {
        (Val::Int(x), Val::Int(y)) => match op {
            BinOp::Add => x.checked_add(*y).map(Val::Int).unwrap_or(Val::Double(*x as f64 + *y as f64)),
            BinOp::Sub => x.checked_sub(*y).map(Val::Int).unwrap_or(Val::Double(*x as f64 - *y as f64)),
            BinOp::Mul => x.checked_mul(*y).map(Val::Int).unwrap_or(Val::Double(*x as f64 * *y as f64)),
            BinOp::Div => x.checked_div(*y).map(Val::Int).unwrap_or(Val::Null),
            BinOp::Mod => x.checked_rem(*y).map(Val::Int).unwrap_or(Val::Null),
            _ => Val::Null,
        },
        _ => match (a.as_number(), b.as_number()) {
            (Some(x), Some(y)) => match op {
                BinOp::Add => Val::Double(x + y),
                BinOp::Sub => Val::Double(x - y),
                BinOp::Mul => Val::Double(x * y),
                BinOp::Div if y == 0.0 => Val::Null,
                BinOp::Div => Val::Double(x / y),
                BinOp::Mod if y == 0.0 => Val::Null,
                BinOp::Mod => Val::Double(x % y),
                _ => Val::Null,
            },
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
        assert!(equals(&Val::Null, &Val::str("")));
    }
}
