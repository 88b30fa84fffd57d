//! The syntax tree of a mapping template, as the parser builds it and the
//! evaluator walks it. Positions are kept where rendering can fail, so a
//! render error can say `line L, column C`.

use super::value::Val;

/// A position in the template source (1-based line and column, in characters).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Pos {
    pub line: u32,
    pub column: u32,
}

/// A piece of template: text, a reference or a directive.
#[derive(Debug, Clone)]
pub enum Node {
    Text(String),
    /// `$a.b`, `$!a`, `${a}`. `escapes` counts the backslashes written before
    /// the `$`: half of them are printed, and an odd count prints `raw` (the
    /// reference's own text) instead of its value, as Velocity does.
    Ref {
        reference: Reference,
        escapes: u32,
        raw: String,
    },
    /// `#set($target = value)`.
    Set {
        target: Reference,
        value: Expr,
        pos: Pos,
    },
    If {
        branches: Vec<(Expr, Vec<Node>)>,
        otherwise: Option<Vec<Node>>,
    },
    Foreach {
        var: String,
        iterable: Expr,
        body: Vec<Node>,
        pos: Pos,
    },
    /// `#break`: leaves the innermost `#foreach` (outside a loop: stops the template).
    Break,
    /// `#stop`: stops rendering; what was rendered so far is the output.
    Stop,
    /// `#define($name) … #end`: `$name` renders the block when referenced.
    Define {
        name: String,
        body: std::sync::Arc<Vec<Node>>,
    },
    /// `#name(args)`: a macro call, or (when no such macro exists) the text `raw`.
    MacroCall {
        name: String,
        args: Vec<Expr>,
        pos: Pos,
        raw: String,
    },
}

/// A reference: `$root` followed by properties, method calls and indexes.
#[derive(Debug, Clone)]
pub struct Reference {
    pub root: String,
    pub parts: Vec<Part>,
    pub pos: Pos,
}

#[derive(Debug, Clone)]
pub enum Part {
    /// `.name`: Velocity's property look-up (`get("name")` on a map, `getName()`/`isName()` otherwise).
    Property(String),
    /// `.name(args)`.
    Method(String, Vec<Expr>),
    /// `[index]`.
    Index(Expr),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BinOp {
    Or,
    And,
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    Add,
    Sub,
    Mul,
    Div,
    Mod,
}

/// An expression inside a directive or a method call.
#[derive(Debug, Clone)]
pub enum Expr {
    Literal(Val),
    /// A double-quoted string with `$` or `#` in it: rendered as a template.
    Interpolated(Vec<Node>),
    Ref(Reference),
    List(Vec<Expr>),
    Map(Vec<(Expr, Expr)>),
    Range(Box<Expr>, Box<Expr>),
    /// A bare word (only `#foreach`'s `in` and macro arguments have them).
    Word(String),
    Not(Box<Expr>),
    Binary(BinOp, Box<Expr>, Box<Expr>),
    /// `a + b`, with both operands' source text: when one side is a string
    /// and the other fails (null), Velocity concatenates the failed side's text.
    Add(Box<Expr>, Box<Expr>, std::sync::Arc<(Box<str>, Box<str>)>),
}

/// A `#macro` definition.
#[derive(Debug, Clone)]
pub struct Macro {
    pub params: Vec<String>,
    pub body: std::sync::Arc<Vec<Node>>,
}
