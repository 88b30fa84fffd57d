//! The parser: template text → [`Node`]s. It scans text, comments, escapes,
//! references and directives itself, and parses directive arguments with the
//! expression lexer. Velocity 1.7's whitespace rules are applied here: `#set`
//! eats the spaces and newline after it, block directives (`#if`, `#elseif`,
//! `#else`, `#end`, `#foreach`, `#break`, `#stop`, `#define`, `#macro`) eat
//! one newline right after them, a `##` comment eats its newline.

use std::collections::HashMap;

use super::ParseError;
use super::ast::{BinOp, Expr, Macro, Node, Part, Pos, Reference};
use super::lexer::{Token, next_token};
use super::value::Val;

/// Deepest nesting of blocks and expressions.
const MAX_NESTING: usize = 128;

pub struct Parser<'a> {
    src: &'a str,
    i: usize,
    line_starts: Vec<usize>,
    depth: usize,
    pub macros: HashMap<String, Macro>,
    /// Offset of `src` in the whole template (for nested string parsing).
    base: usize,
}

/// What ended a block.
enum BlockEnd {
    Eof,
    End,
    Else,
    ElseIf(Expr),
}

fn is_ident_start(b: u8) -> bool {
    b.is_ascii_alphabetic() || b == b'_'
}

fn is_ident(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || b == b'-'
}

impl<'a> Parser<'a> {
    pub fn new(src: &'a str) -> Self {
        let mut line_starts = vec![0];
        line_starts.extend(src.bytes().enumerate().filter(|(_, b)| *b == b'\n').map(|(i, _)| i + 1));
        Parser { src, i: 0, line_starts, depth: 0, macros: HashMap::new(), base: 0 }
    }

    fn pos_at(&self, offset: usize) -> Pos {
        let offset = offset + self.base;
        let line = self.line_starts.partition_point(|s| *s <= offset);
        let start = self.line_starts[line - 1];
        Pos { line: line as u32, column: (offset - start + 1) as u32 }
    }

    fn err<T>(&self, at: usize, message: impl Into<String>) -> Result<T, ParseError> {
        let p = self.pos_at(at);
        Err(ParseError { line: p.line, column: p.column, message: message.into() })
    }

    fn bytes(&self) -> &'a [u8] {
        self.src.as_bytes()
    }

    fn rest(&self) -> &'a str {
        &self.src[self.i..]
    }

    /// Parses the whole template.
    pub fn parse(&mut self) -> Result<Vec<Node>, ParseError> {
        let (nodes, end, at) = self.block()?;
        match end {
            BlockEnd::Eof => Ok(nodes),
            _ => self.err(at, "#end, #else or #elseif without an open #if, #foreach, #define or #macro"),
        }
    }

    fn enter(&mut self) -> Result<(), ParseError> {
        self.depth += 1;
        if self.depth > MAX_NESTING {
            return self.err(self.i, "nested too deeply");
        }
        Ok(())
    }

    /// Eats one newline (`\n` or `\r\n`) right here.
    fn eat_newline(&mut self) {
        if self.rest().starts_with("\r\n") {
            self.i += 2;
        } else if self.rest().starts_with('\n') {
            self.i += 1;
        }
    }

    /// A directive name at `self.i` (after `#`), in `name` or `{name}` form.
    fn directive_name(&self) -> Option<(String, usize)> {
        let b = self.bytes();
        let mut j = self.i + 1;
        let braced = b.get(j) == Some(&b'{');
        if braced {
            j += 1;
        }
        let start = j;
        while j < b.len() && (b[j].is_ascii_alphanumeric() || b[j] == b'_') {
            j += 1;
        }
        if j == start || !is_ident_start(b[start]) {
            return None;
        }
        let name = &self.src[start..j];
        if braced {
            if b.get(j) != Some(&b'}') {
                return None;
            }
            j += 1;
        }
        Some((name.to_string(), j))
    }

    /// Parses nodes until `#end`/`#else`/`#elseif` or the end of input.
    fn block(&mut self) -> Result<(Vec<Node>, BlockEnd, usize), ParseError> {
        self.enter()?;
        let mut nodes = Vec::new();
        let mut text = String::new();
        let b = self.bytes();
        let flush = |text: &mut String, nodes: &mut Vec<Node>| {
            if !text.is_empty() {
                nodes.push(Node::Text(std::mem::take(text)));
            }
        };
        while self.i < b.len() {
            let c = b[self.i];
            if c == b'\\' && matches!(b.get(self.i + 1), Some(b'$') | Some(b'#')) {
                text.push(b[self.i + 1] as char);
                self.i += 2;
                continue;
            }
            if c == b'#' {
                let rest = self.rest();
                if rest.starts_with("##") {
                    // A line comment, with its newline.
                    match rest.find('\n') {
                        Some(n) => self.i += n + 1,
                        None => self.i = b.len(),
                    }
                    continue;
                }
                if let Some(inner) = rest.strip_prefix("#*") {
                    match inner.find("*#") {
                        Some(n) => self.i += n + 4,
                        None => return self.err(self.i, "unterminated #* comment"),
                    }
                    continue;
                }
                if rest.starts_with("#[[") {
                    match rest.find("]]#") {
                        Some(n) => {
                            text.push_str(&rest[3..n]);
                            self.i += n + 3;
                        }
                        None => return self.err(self.i, "unterminated #[[ block"),
                    }
                    continue;
                }
                if let Some((name, after)) = self.directive_name() {
                    let at = self.i;
                    match name.as_str() {
                        "end" | "else" => {
                            flush(&mut text, &mut nodes);
                            self.i = after;
                            self.eat_newline();
                            self.depth -= 1;
                            return Ok((nodes, if name == "end" { BlockEnd::End } else { BlockEnd::Else }, at));
                        }
                        "elseif" => {
                            flush(&mut text, &mut nodes);
                            self.i = after;
                            let cond = self.paren_expr()?;
                            self.eat_newline();
                            self.depth -= 1;
                            return Ok((nodes, BlockEnd::ElseIf(cond), at));
                        }
                        "set" | "if" | "foreach" | "define" | "macro" | "break" | "stop" => {
                            flush(&mut text, &mut nodes);
                            self.i = after;
                            if let Some(node) = self.directive(&name, at)? {
                                nodes.push(node);
                            }
                            continue;
                        }
                        _ => {
                            // A macro call `#name(…)`; otherwise plain text.
                            if self.src[after..].trim_start_matches([' ', '\t']).starts_with('(') {
                                flush(&mut text, &mut nodes);
                                self.i = after;
                                let args = self.macro_args()?;
                                nodes.push(Node::MacroCall { name, args, pos: self.pos_at(at) });
                                continue;
                            }
                        }
                    }
                }
                text.push('#');
                self.i += 1;
                continue;
            }
            if c == b'$'
                && let Some((node, after)) = self.text_reference(self.i)?
            {
                flush(&mut text, &mut nodes);
                nodes.push(node);
                self.i = after;
                continue;
            }
            // Plain text up to the next special character.
            let start = self.i;
            self.i += 1;
            while self.i < b.len() && !matches!(b[self.i], b'#' | b'$' | b'\\') {
                self.i += 1;
            }
            text.push_str(&self.src[start..self.i]);
        }
        flush(&mut text, &mut nodes);
        self.depth -= 1;
        Ok((nodes, BlockEnd::Eof, self.i))
    }
}

impl<'a> Parser<'a> {
    /// Parses a directive whose name ends at `self.i`.
    fn directive(&mut self, name: &str, at: usize) -> Result<Option<Node>, ParseError> {
        match name {
            "set" => {
                self.expect_open_paren(at, "#set")?;
                let target = self.reference_in_expr(at)?;
                match self.token()? {
                    Token::Op("=") => {}
                    _ => return self.err(self.i, "#set needs `$reference = value`"),
                }
                let value = self.expr()?;
                self.expect(Token::RParen, "`)` closing #set")?;
                // #set eats the whitespace and the newline after it.
                while matches!(self.bytes().get(self.i), Some(b' ') | Some(b'\t')) {
                    self.i += 1;
                }
                self.eat_newline();
                Ok(Some(Node::Set { target, value, pos: self.pos_at(at) }))
            }
            "if" => {
                let cond = self.paren_expr()?;
                self.eat_newline();
                let mut branches = Vec::new();
                let mut current = cond;
                loop {
                    let (body, end, end_at) = self.block()?;
                    match end {
                        BlockEnd::End => {
                            branches.push((current, body));
                            return Ok(Some(Node::If { branches, otherwise: None }));
                        }
                        BlockEnd::ElseIf(next) => {
                            branches.push((current, body));
                            current = next;
                        }
                        BlockEnd::Else => {
                            branches.push((current, body));
                            let (otherwise, end, end_at) = self.block()?;
                            if !matches!(end, BlockEnd::End) {
                                return self.err(end_at, "#if: expected #end after #else");
                            }
                            return Ok(Some(Node::If { branches, otherwise: Some(otherwise) }));
                        }
                        BlockEnd::Eof => {
                            return self.err(at, format!("#if without #end (the block reaches the end at {end_at})"));
                        }
                    }
                }
            }
            "foreach" => {
                self.expect_open_paren(at, "#foreach")?;
                let var = self.reference_in_expr(at)?;
                if !var.parts.is_empty() {
                    return self.err(at, "#foreach needs a plain `$name` as its loop variable");
                }
                match self.token()? {
                    Token::Word(w) if w == "in" => {}
                    _ => return self.err(self.i, "#foreach needs `$item in $list`"),
                }
                let iterable = self.expr()?;
                self.expect(Token::RParen, "`)` closing #foreach")?;
                self.eat_newline();
                let (body, end, _) = self.block()?;
                if !matches!(end, BlockEnd::End) {
                    return self.err(at, "#foreach without #end");
                }
                Ok(Some(Node::Foreach { var: var.root, iterable, body, pos: self.pos_at(at) }))
            }
            "break" | "stop" => {
                self.eat_newline();
                Ok(Some(if name == "break" { Node::Break } else { Node::Stop }))
            }
            "define" => {
                self.expect_open_paren(at, "#define")?;
                let var = self.reference_in_expr(at)?;
                self.expect(Token::RParen, "`)` closing #define")?;
                self.eat_newline();
                let (body, end, _) = self.block()?;
                if !matches!(end, BlockEnd::End) {
                    return self.err(at, "#define without #end");
                }
                Ok(Some(Node::Define { name: var.root, body }))
            }
            "macro" => {
                self.expect_open_paren(at, "#macro")?;
                let name = match self.token()? {
                    Token::Word(w) => w,
                    _ => return self.err(at, "#macro needs a name: #macro(name $arg …)"),
                };
                let mut params = Vec::new();
                loop {
                    match self.token()? {
                        Token::RParen => break,
                        Token::Comma => {}
                        Token::Dollar => params.push(self.reference_in_expr(at)?.root),
                        _ => return self.err(self.i, "#macro parameters are `$name`s"),
                    }
                }
                self.eat_newline();
                let (body, end, _) = self.block()?;
                if !matches!(end, BlockEnd::End) {
                    return self.err(at, "#macro without #end");
                }
                self.macros.insert(name, Macro { params, body });
                Ok(None)
            }
            _ => Ok(None),
        }
    }

    fn expect_open_paren(&mut self, at: usize, what: &str) -> Result<(), ParseError> {
        match self.token()? {
            Token::LParen => Ok(()),
            _ => self.err(at, format!("{what} needs `(`")),
        }
    }

    fn token(&mut self) -> Result<Token, ParseError> {
        let at = self.i;
        next_token(self.src, &mut self.i).or_else(|m| self.err(at, m))
    }

    fn peek(&mut self) -> Result<Token, ParseError> {
        let save = self.i;
        let t = self.token();
        self.i = save;
        t
    }

    fn expect(&mut self, want: Token, what: &str) -> Result<(), ParseError> {
        let at = self.i;
        let got = self.token()?;
        if got == want { Ok(()) } else { self.err(at, format!("expected {what}, found {got:?}")) }
    }

    /// `( expr )`.
    fn paren_expr(&mut self) -> Result<Expr, ParseError> {
        let at = self.i;
        self.expect_open_paren(at, "the directive")?;
        let e = self.expr()?;
        self.expect(Token::RParen, "`)`")?;
        Ok(e)
    }

    fn macro_args(&mut self) -> Result<Vec<Expr>, ParseError> {
        self.expect(Token::LParen, "`(`")?;
        let mut args = Vec::new();
        loop {
            match self.peek()? {
                Token::RParen => {
                    self.token()?;
                    return Ok(args);
                }
                Token::Comma => {
                    self.token()?;
                }
                Token::Eof => return self.err(self.i, "unterminated macro call"),
                _ => args.push(self.primary()?),
            }
        }
    }

    /// A reference inside an expression: `$` is next (after whitespace).
    fn reference_in_expr(&mut self, at: usize) -> Result<Reference, ParseError> {
        match self.token()? {
            Token::Dollar => {}
            _ => return self.err(at, "expected a $reference"),
        }
        let start = self.i;
        match self.reference(start, true)? {
            Some((r, _quiet, after)) => {
                self.i = after;
                Ok(r)
            }
            None => self.err(start, "expected a $reference"),
        }
    }

    /// A reference in template text at `at` (a `$`): the node and where it ends,
    /// or `None` when the `$` is plain text.
    fn text_reference(&mut self, at: usize) -> Result<Option<(Node, usize)>, ParseError> {
        Ok(self.reference(at, false)?.map(|(reference, quiet, after)| (Node::Ref { reference, quiet }, after)))
    }

    /// Reads `$[!][{]name(.prop|.method(args)|[index])*[}]` at `at`.
    fn reference(&mut self, at: usize, in_expr: bool) -> Result<Option<(Reference, bool, usize)>, ParseError> {
        let b = self.bytes();
        let mut j = at + 1;
        let quiet = b.get(j) == Some(&b'!');
        if quiet {
            j += 1;
        }
        let formal = b.get(j) == Some(&b'{');
        if formal {
            j += 1;
        }
        if !b.get(j).is_some_and(|c| is_ident_start(*c)) {
            return Ok(None);
        }
        let start = j;
        while j < b.len() && is_ident(b[j]) {
            j += 1;
        }
        // A trailing '-' is not part of the name (`$a-` then text).
        while j > start + 1 && b[j - 1] == b'-' {
            j -= 1;
        }
        let root = self.src[start..j].to_string();
        let mut parts = Vec::new();
        loop {
            match b.get(j) {
                Some(b'.') if b.get(j + 1).is_some_and(|c| is_ident_start(*c)) => {
                    let s = j + 1;
                    let mut k = s;
                    while k < b.len() && (b[k].is_ascii_alphanumeric() || b[k] == b'_') {
                        k += 1;
                    }
                    let name = self.src[s..k].to_string();
                    if b.get(k) == Some(&b'(') {
                        let save = self.i;
                        self.i = k;
                        let args = self.call_args()?;
                        j = self.i;
                        self.i = save;
                        parts.push(Part::Method(name, args));
                    } else {
                        parts.push(Part::Property(name));
                        j = k;
                    }
                }
                Some(b'[') => {
                    let save = self.i;
                    self.i = j + 1;
                    self.enter()?;
                    let index = self.expr()?;
                    self.depth -= 1;
                    self.expect(Token::RBracket, "`]`")?;
                    j = self.i;
                    self.i = save;
                    parts.push(Part::Index(index));
                }
                _ => break,
            }
        }
        if formal {
            if b.get(j) != Some(&b'}') {
                if in_expr {
                    return self.err(at, "`${` without `}`");
                }
                return Ok(None);
            }
            j += 1;
        }
        Ok(Some((Reference { root, parts, pos: self.pos_at(at) }, quiet, j)))
    }

    /// `( arg, … )` of a method call; `self.i` is at `(`.
    fn call_args(&mut self) -> Result<Vec<Expr>, ParseError> {
        self.expect(Token::LParen, "`(`")?;
        self.enter()?;
        let mut args = Vec::new();
        if self.peek()? == Token::RParen {
            self.token()?;
            self.depth -= 1;
            return Ok(args);
        }
        loop {
            args.push(self.expr()?);
            match self.token()? {
                Token::Comma => {}
                Token::RParen => break,
                t => return self.err(self.i, format!("expected `,` or `)` in the arguments, found {t:?}")),
            }
        }
        self.depth -= 1;
        Ok(args)
    }

    pub fn expr(&mut self) -> Result<Expr, ParseError> {
        self.enter()?;
        let e = self.binary(0)?;
        self.depth -= 1;
        Ok(e)
    }

    fn binary(&mut self, level: usize) -> Result<Expr, ParseError> {
        const LEVELS: &[&[(&str, BinOp)]] = &[
            &[("||", BinOp::Or), ("or", BinOp::Or)],
            &[("&&", BinOp::And), ("and", BinOp::And)],
            &[("==", BinOp::Eq), ("!=", BinOp::Ne), ("eq", BinOp::Eq), ("ne", BinOp::Ne)],
            &[
                ("<", BinOp::Lt),
                ("<=", BinOp::Le),
                (">", BinOp::Gt),
                (">=", BinOp::Ge),
                ("lt", BinOp::Lt),
                ("le", BinOp::Le),
                ("gt", BinOp::Gt),
                ("ge", BinOp::Ge),
            ],
            &[("+", BinOp::Add), ("-", BinOp::Sub)],
            &[("*", BinOp::Mul), ("/", BinOp::Div), ("%", BinOp::Mod)],
        ];
        if level == LEVELS.len() {
            return self.unary();
        }
        let mut left = self.binary(level + 1)?;
        loop {
            let save = self.i;
            let op = match self.token()? {
                Token::Op(o) => LEVELS[level].iter().find(|(s, _)| *s == o).map(|(_, op)| *op),
                Token::Word(w) => LEVELS[level].iter().find(|(s, _)| *s == w).map(|(_, op)| *op),
                _ => None,
            };
            match op {
                Some(op) => {
                    let right = self.binary(level + 1)?;
                    left = Expr::Binary(op, Box::new(left), Box::new(right));
                }
                None => {
                    self.i = save;
                    return Ok(left);
                }
            }
        }
    }

    fn unary(&mut self) -> Result<Expr, ParseError> {
        let save = self.i;
        match self.token()? {
            Token::Op("!") => {
                self.enter()?;
                let e = self.unary()?;
                self.depth -= 1;
                Ok(Expr::Not(Box::new(e)))
            }
            Token::Word(w) if w == "not" => {
                self.enter()?;
                let e = self.unary()?;
                self.depth -= 1;
                Ok(Expr::Not(Box::new(e)))
            }
            Token::Op("-") => {
                self.enter()?;
                let e = self.unary()?;
                self.depth -= 1;
                Ok(match e {
                    Expr::Literal(Val::Int(i)) => Expr::Literal(Val::Int(-i)),
                    Expr::Literal(Val::Double(d)) => Expr::Literal(Val::Double(-d)),
                    other => Expr::Neg(Box::new(other)),
                })
            }
            _ => {
                self.i = save;
                self.primary()
            }
        }
    }

    fn primary(&mut self) -> Result<Expr, ParseError> {
        let at = self.i;
        match self.token()? {
            Token::Int(i) => Ok(Expr::Literal(Val::Int(i))),
            Token::Double(d) => Ok(Expr::Literal(Val::Double(d))),
            Token::SingleQuoted(s) => Ok(Expr::Literal(Val::str(s))),
            Token::DoubleQuoted(s) => {
                if !s.contains('$') && !s.contains('#') {
                    return Ok(Expr::Literal(Val::str(s)));
                }
                // Interpolated: parse the content as template text.
                let content_offset = (self.i - 1).saturating_sub(s.len());
                let mut inner = Parser {
                    src: self.src.get(content_offset..content_offset + s.len()).unwrap_or(""),
                    i: 0,
                    line_starts: self.line_starts.clone(),
                    depth: self.depth,
                    macros: HashMap::new(),
                    base: self.base + content_offset,
                };
                if inner.src != s {
                    // A doubled quote was folded: parse the folded text alone.
                    let mut p = Parser::new(&s);
                    return Ok(Expr::Interpolated(p.parse()?));
                }
                let nodes = inner.parse()?;
                Ok(Expr::Interpolated(nodes))
            }
            Token::Word(w) => match w.as_str() {
                "true" => Ok(Expr::Literal(Val::Bool(true))),
                "false" => Ok(Expr::Literal(Val::Bool(false))),
                "null" => Ok(Expr::Literal(Val::Null)),
                other => self.err(at, format!("unexpected word {other:?} in an expression")),
            },
            Token::Dollar => {
                self.i = at;
                let r = self.reference_in_expr(at)?;
                Ok(Expr::Ref(r))
            }
            Token::LParen => {
                let e = self.expr()?;
                self.expect(Token::RParen, "`)`")?;
                Ok(e)
            }
            Token::LBracket => {
                if self.peek()? == Token::RBracket {
                    self.token()?;
                    return Ok(Expr::List(Vec::new()));
                }
                let first = self.expr()?;
                if self.peek()? == Token::DotDot {
                    self.token()?;
                    let last = self.expr()?;
                    self.expect(Token::RBracket, "`]` closing the range")?;
                    return Ok(Expr::Range(Box::new(first), Box::new(last)));
                }
                let mut items = vec![first];
                loop {
                    match self.token()? {
                        Token::Comma => items.push(self.expr()?),
                        Token::RBracket => return Ok(Expr::List(items)),
                        t => return self.err(self.i, format!("expected `,` or `]` in the list, found {t:?}")),
                    }
                }
            }
            Token::LBrace => {
                let mut entries = Vec::new();
                if self.peek()? == Token::RBrace {
                    self.token()?;
                    return Ok(Expr::Map(entries));
                }
                loop {
                    let key = self.expr()?;
                    self.expect(Token::Colon, "`:` in the map")?;
                    let value = self.expr()?;
                    entries.push((key, value));
                    match self.token()? {
                        Token::Comma => {}
                        Token::RBrace => return Ok(Expr::Map(entries)),
                        t => return self.err(self.i, format!("expected `,` or `}}` in the map, found {t:?}")),
                    }
                }
            }
            Token::Eof => self.err(at, "unexpected end of the template in an expression"),
            t => self.err(at, format!("unexpected {t:?} in an expression")),
        }
    }
}
