//! The syntax tree of a mapping template.

use super::value::Val;

/// A position in the template source (1-based).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Pos {
    pub line: u32,
    pub column: u32,
}

/// A piece of template: text or a directive.
#[derive(Debug, Clone)]
pub enum Node {
    Text(String),
    /// `$a.b`, `$!a`, `${a}`: rendered, empty when null. `raw` is the source text.
    Ref {
        reference: Reference,
        quiet: bool,
    },
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
    Break,
    Stop,
    Define {
        name: String,
        body: Vec<Node>,
    },
    MacroCall {
        name: String,
        args: Vec<Expr>,
        pos: Pos,
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
    Property(String),
    Method(String, Vec<Expr>),
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

/// An expression inside a directive.
#[derive(Debug, Clone)]
pub enum Expr {
    Literal(Val),
    /// A double-quoted string: interpolated.
    Interpolated(Vec<Node>),
    Ref(Reference),
    List(Vec<Expr>),
    Map(Vec<(Expr, Expr)>),
    Range(Box<Expr>, Box<Expr>),
    Not(Box<Expr>),
    Neg(Box<Expr>),
    Binary(BinOp, Box<Expr>, Box<Expr>),
}

/// A `#macro` definition.
#[derive(Debug, Clone)]
pub struct Macro {
    pub params: Vec<String>,
    pub body: Vec<Node>,
}
