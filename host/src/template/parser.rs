//! The parser: template text → [`Node`]s, following Velocity 1.7's grammar
//! (`Parser.jjt`) closely enough that a template which fails to parse on
//! API Gateway fails here too, and the whitespace comes out the same:
//!
//! * text is everything up to the next `$`, `#` or `\`;
//! * `#set` eats the spaces and tabs before it when they start a token (at
//!   the start of the template, or right after a reference, directive or
//!   comment), but not when they end a piece of text (`a #set(…)` keeps `a `);
//! * the `)` closing a directive (`#set`, `#if`, `#elseif`, `#foreach`,
//!   `#define`, `#macro`, a macro call) and the words `#else` and `#end` eat
//!   the spaces, tabs and one newline after them, if a newline follows;
//! * `##` comments eat their newline, `#* … *#` comments do not;
//! * `\` before `$ref` or `#directive` escapes it; pairs of `\` print as one.
//!
//! Method arguments, list items and map entries are Velocity 1.7
//! "parameters" (literals, references, lists, maps, ranges — no operators),
//! so `$s.substring($i + 1)` is a parse error here as it is on AWS. The
//! expression tokens come from [`super::lexer`].

use std::collections::HashMap;
use std::sync::Arc;

use super::ParseError;
use super::ast::{BinOp, Expr, Macro, Node, Part, Pos, Reference};
use super::lexer::{Token, next_token, skip_ws};
use super::value::Val;

/// Deepest nesting of blocks, expressions and interpolated strings.
const MAX_NESTING: usize = 64;
/// Most operators chained in one expression (`1 + 1 + …` nests the tree one
/// level per operator; evaluating and dropping it recurse that deep).
const MAX_CHAIN: usize = 400;

/// Directives Velocity knows (an escaped one prints without its backslash).
const DIRECTIVES: &[&str] = &[
    "if", "else", "elseif", "end", "set", "foreach", "define", "macro", "break", "stop", "include", "parse", "evaluate",
];

pub struct Parser<'a> {
    src: &'a str,
    i: usize,
    /// Offset of `src` in the whole template (a string literal's content is parsed alone).
    base: usize,
    line_starts: Arc<Vec<usize>>,
    depth: usize,
    /// Operators chained so far in the expression being parsed.
    chain: usize,
    pub macros: HashMap<String, Macro>,
    /// The next directive follows `$#`: it is literal text (or a call of no macro).
    literal_next: bool,
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

/// An operand's source as Velocity prints a failed one: trimmed, without
/// the parentheses around it.
fn operand_text(s: &str) -> Box<str> {
    let mut t = s.trim();
    while t.len() >= 2 && t.starts_with('(') && t.ends_with(')') {
        t = t[1..t.len() - 1].trim();
    }
    t.into()
}

impl<'a> Parser<'a> {
    pub fn new(src: &'a str) -> Self {
        let mut line_starts = vec![0];
        line_starts.extend(src.bytes().enumerate().filter(|(_, b)| *b == b'\n').map(|(i, _)| i + 1));
        Parser {
            src,
            i: 0,
            base: 0,
            line_starts: Arc::new(line_starts),
            depth: 0,
            chain: 0,
            macros: HashMap::new(),
            literal_next: false,
        }
    }

    fn pos_at(&self, offset: usize) -> Pos {
        let offset = offset + self.base;
        let line = self.line_starts.partition_point(|s| *s <= offset).max(1);
        let start = self.line_starts.get(line - 1).copied().unwrap_or(0);
        Pos { line: line as u32, column: (offset.saturating_sub(start) + 1) as u32 }
    }

    fn err<T>(&self, at: usize, message: impl Into<String>) -> Result<T, ParseError> {
        let p = self.pos_at(at);
        Err(ParseError { line: p.line, column: p.column, message: message.into() })
    }

    fn bytes(&self) -> &'a [u8] {
        self.src.as_bytes()
    }

    /// Parses the whole template.
    pub fn parse(&mut self) -> Result<Vec<Node>, ParseError> {
        let (nodes, end, at) = self.block()?;
        match end {
            BlockEnd::Eof => Ok(nodes),
            BlockEnd::End => self.err(at, "#end without an open #if, #foreach, #define or #macro"),
            BlockEnd::Else | BlockEnd::ElseIf(_) => self.err(at, "#else or #elseif without an open #if"),
        }
    }

    fn enter(&mut self, at: usize) -> Result<(), ParseError> {
        self.depth += 1;
        if self.depth > MAX_NESTING {
            return self.err(at, format!("the template nests more than {MAX_NESTING} levels deep"));
        }
        Ok(())
    }

    fn leave(&mut self) {
        self.depth -= 1;
    }

    /// After a directive's `)`, `#else` or `#end`: eats spaces and tabs and
    /// one newline, when a newline follows them.
    fn eat_line_end(&mut self) {
        let b = self.bytes();
        let mut j = self.i;
        while matches!(b.get(j), Some(b' ' | b'\t')) {
            j += 1;
        }
        match b.get(j) {
            Some(b'\n') => self.i = j + 1,
            Some(b'\r') if b.get(j + 1) == Some(&b'\n') => self.i = j + 2,
            Some(b'\r') => self.i = j + 1,
            _ => {}
        }
    }

    /// `#set(` or `#{set}(` (spaces allowed before `(`) at `at`: the offset after `(`.
    fn set_at(&self, at: usize) -> Option<usize> {
        let rest = &self.bytes()[at..];
        let n = if rest.starts_with(b"#set") {
            4
        } else if rest.starts_with(b"#{set}") {
            6
        } else {
            return None;
        };
        let mut j = n;
        while rest.get(j) == Some(&b' ') {
            j += 1;
        }
        (rest.get(j) == Some(&b'(')).then_some(at + j + 1)
    }

    /// A directive name after the `#` at `at` (`name` or `{name}`): the name and the offset after it.
    fn directive_word(&self, at: usize) -> Option<(&'a str, usize)> {
        let b = self.bytes();
        let mut j = at + 1;
        let braced = b.get(j) == Some(&b'{');
        if braced {
            j += 1;
        }
        let start = j;
        let first = *b.get(j)?;
        if !(first.is_ascii_alphabetic() || first == b'_' || (!braced && first == b'@')) {
            return None;
        }
        while j < b.len() && (b[j].is_ascii_alphanumeric() || b[j] == b'_' || b[j] == b'@') {
            j += 1;
        }
        let name = &self.src[start..j];
        if braced {
            if b.get(j) != Some(&b'}') {
                return None;
            }
            j += 1;
        }
        Some((name, j))
    }

    /// Whether `(` follows `at` after whitespace (newlines included).
    fn paren_follows(&self, at: usize) -> bool {
        let b = self.bytes();
        let mut j = at;
        while matches!(b.get(j), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            j += 1;
        }
        b.get(j) == Some(&b'(')
    }

    /// Parses nodes until `#end`/`#else`/`#elseif` or the end of input.
    fn block(&mut self) -> Result<(Vec<Node>, BlockEnd, usize), ParseError> {
        self.enter(self.i)?;
        let result = self.block_inner();
        self.leave();
        result
    }

    fn block_inner(&mut self) -> Result<(Vec<Node>, BlockEnd, usize), ParseError> {
        let mut nodes = Vec::new();
        let mut text = String::new();
        let b = self.bytes();
        let flush = |text: &mut String, nodes: &mut Vec<Node>| {
            if !text.is_empty() {
                nodes.push(Node::Text(std::mem::take(text)));
            }
        };
        // The previous token was a reference: a `#set` right after it leaves
        // Velocity's lexer in its reference state, where `[` and `{` fail.
        let mut after_ref = false;
        // The previous token was a reference ending in `.property` (not `${…}`):
        // Velocity's lexer is then in a state where `##` starts no comment.
        let mut after_prop = false;
        while self.i < b.len() {
            let prop = std::mem::take(&mut after_prop);
            // Spaces and tabs that start a token belong to a `#set` after them.
            if matches!(b[self.i], b' ' | b'\t') {
                let mut j = self.i;
                while matches!(b.get(j), Some(b' ' | b'\t')) {
                    j += 1;
                }
                if self.set_at(j).is_some() {
                    self.i = j;
                }
            }
            let c = b[self.i];
            if c == b'\\' {
                let start = self.i;
                let mut n = start;
                while b.get(n) == Some(&b'\\') {
                    n += 1;
                }
                let k = n - start;
                match b.get(n) {
                    Some(b'$') => {
                        if let Some((reference, after)) = self.reference_at(n)? {
                            flush(&mut text, &mut nodes);
                            let raw = self.src[n..after].to_string();
                            nodes.push(Node::Ref { reference, escapes: k as u32, raw });
                            self.i = after;
                            after_ref = true;
                            continue;
                        }
                        if self.dollar_vanishes(n) {
                            // `\$#end`: the backslashes belong to the `$`, which joins the directive.
                            self.i = n + if b.get(n + 1) == Some(&b'!') { 2 } else { 1 };
                            after_ref = false;
                            continue;
                        }
                        text.push_str(&self.src[start..n]);
                        self.i = n;
                        self.dollar_text(&mut text)?;
                    }
                    Some(b'#') => {
                        let word = self.directive_word(n).filter(|_| !self.bytes()[n..].starts_with(b"##"));
                        let known = word.is_some_and(|(w, _)| DIRECTIVES.contains(&w) || self.macros.contains_key(w));
                        if k % 2 == 1 {
                            match word {
                                Some((_, end)) => {
                                    if known {
                                        text.push_str(&"\\".repeat(k / 2));
                                        text.push_str(&self.src[n..end]);
                                    } else {
                                        text.push_str(&self.src[start..end]);
                                    }
                                    self.i = end;
                                }
                                None => {
                                    text.push_str(&self.src[start..n]);
                                    self.i = n;
                                }
                            }
                        } else {
                            // `#set(` is one token to Velocity, not a directive name after `#`.
                            let control = known && self.set_at(n).is_none();
                            text.push_str(&"\\".repeat(if control { k / 2 } else { k }));
                            self.i = n;
                        }
                    }
                    _ => {
                        text.push_str(&self.src[start..n]);
                        self.i = n;
                    }
                }
                after_ref = false;
                continue;
            }
            if c == b'$' {
                if let Some((reference, after)) = self.reference_at(self.i)? {
                    flush(&mut text, &mut nodes);
                    let raw = self.src[self.i..after].to_string();
                    after_prop = !raw.ends_with('}') && matches!(reference.parts.last(), Some(Part::Property(_)));
                    nodes.push(Node::Ref { reference, escapes: 0, raw });
                    self.i = after;
                    after_ref = true;
                    continue;
                }
                self.dollar_text(&mut text)?;
                after_ref = false;
                continue;
            }
            if c == b'#' {
                let at = self.i;
                let rest = &b[at..];
                if prop && rest.starts_with(b"##") {
                    // `$a.b##…`: the first `#` joins a directive after it, or
                    // both are text.
                    let directive = self
                        .directive_word(at + 1)
                        .is_some_and(|(w, _)| DIRECTIVES.contains(&w) || self.macros.contains_key(w));
                    if directive || self.set_at(at + 1).is_some() {
                        self.i = at + 1;
                    } else {
                        text.push_str("##");
                        self.i = at + 2;
                    }
                    after_ref = false;
                    continue;
                }
                if rest.starts_with(b"##") {
                    // A line comment, with its newline.
                    let mut j = at + 2;
                    while j < b.len() && b[j] != b'\n' && b[j] != b'\r' {
                        j += 1;
                    }
                    if b.get(j) == Some(&b'\r') && b.get(j + 1) == Some(&b'\n') {
                        j += 1;
                    }
                    self.i = (j + 1).min(b.len());
                    after_ref = false;
                    continue;
                }
                if rest.starts_with(b"#[[") {
                    match self.src[at + 3..].find("]]#") {
                        Some(n) => {
                            text.push_str(&self.src[at + 3..at + 3 + n]);
                            self.i = at + 3 + n + 3;
                        }
                        None => return self.err(at, "#[[ without ]]#"),
                    }
                    after_ref = false;
                    continue;
                }
                if rest.starts_with(b"#*") {
                    // A block comment; unterminated, it runs to the end.
                    self.i = match self.src[at + 2..].find("*#") {
                        Some(n) => at + 2 + n + 2,
                        None => b.len(),
                    };
                    after_ref = false;
                    continue;
                }
                if let Some(after) = self.set_at(at) {
                    flush(&mut text, &mut nodes);
                    self.i = after;
                    let node = self.set_directive(at)?;
                    nodes.push(node);
                    if after_ref && b.get(self.i) == Some(&b'[') {
                        return self.err(self.i, "unexpected `[` after a #set that follows a reference");
                    }
                    after_ref = false;
                    continue;
                }
                after_ref = false;
                if std::mem::take(&mut self.literal_next)
                    && let Some((name, after)) = self.directive_word(at)
                {
                    if self.paren_follows(after) {
                        flush(&mut text, &mut nodes);
                        self.i = after;
                        if let Some(node) = self.directive(&format!("#{name}"), at)? {
                            nodes.push(node);
                        }
                    } else {
                        text.push_str(&self.src[at..after]);
                        self.i = after;
                    }
                    continue;
                }
                if let Some((name, after)) = self.directive_word(at) {
                    match name {
                        "end" | "else" => {
                            flush(&mut text, &mut nodes);
                            self.i = after;
                            self.eat_line_end();
                            return Ok((nodes, if name == "end" { BlockEnd::End } else { BlockEnd::Else }, at));
                        }
                        "elseif" => {
                            flush(&mut text, &mut nodes);
                            self.i = after;
                            let cond = self.paren_condition(at, "#elseif")?;
                            return Ok((nodes, BlockEnd::ElseIf(cond), at));
                        }
                        "if" => {
                            flush(&mut text, &mut nodes);
                            self.i = after;
                            let node = self.if_directive(at)?;
                            nodes.push(node);
                            continue;
                        }
                        _ if self.paren_follows(after) => {
                            flush(&mut text, &mut nodes);
                            self.i = after;
                            if let Some(node) = self.directive(name, at)? {
                                nodes.push(node);
                            }
                            continue;
                        }
                        "break" | "stop" => {
                            flush(&mut text, &mut nodes);
                            self.i = after;
                            nodes.push(if name == "break" { Node::Break } else { Node::Stop });
                            continue;
                        }
                        "foreach" | "define" | "macro" => return self.err(at, format!("#{name} needs `(`")),
                        _ => {
                            text.push_str(&self.src[at..after]);
                            self.i = after;
                            continue;
                        }
                    }
                }
                if at + 1 == b.len() && self.base == 0 {
                    return self.err(at, "a `#` at the end of the template");
                }
                if b.get(at + 1) == Some(&b'$') && self.dollar_vanishes(at + 1) {
                    // `#$#end`: the `#` joins the `$`, which joins the directive.
                    self.i = at + 1;
                    continue;
                }
                text.push('#');
                self.i += 1;
                continue;
            }
            // Plain text up to the next special character.
            let start = self.i;
            self.i += 1;
            while self.i < b.len() && !matches!(b[self.i], b'#' | b'$' | b'\\') {
                self.i += 1;
            }
            text.push_str(&self.src[start..self.i]);
            after_ref = false;
        }
        flush(&mut text, &mut nodes);
        Ok((nodes, BlockEnd::Eof, self.i))
    }

    /// A `$` (or `$!`) that starts no reference: text (`$!` prints as `$`
    /// unless a `{` follows), except at the very end of the template, where
    /// Velocity's lexer fails.
    fn dollar_text(&mut self, text: &mut String) -> Result<(), ParseError> {
        let b = self.bytes();
        let at = self.i;
        let bang = b.get(at + 1) == Some(&b'!');
        let end = at + if bang { 2 } else { 1 };
        if end >= b.len() && self.base == 0 {
            return self.err(at, "a `$` at the end of the template");
        }
        self.i = end;
        if self.dollar_vanishes(at) {
            return Ok(());
        }
        // Before another directive, `$#name` is literal text.
        if b.get(end) == Some(&b'#') && !b[end..].starts_with(b"##") && self.directive_word(end).is_some() {
            self.literal_next = true;
        }
        let keep_bang = bang && matches!(b.get(end), Some(b'{' | b'$' | b'#'));
        text.push_str(if keep_bang { "$!" } else { "$" });
        Ok(())
    }

    /// Whether the `$` (or `$!`) at `at` joins a token that prints nothing:
    /// `#set`, `#if`, `#elseif`, `#else`, `#end` or a block comment.
    fn dollar_vanishes(&self, at: usize) -> bool {
        let b = self.bytes();
        let mut end = at + if b.get(at + 1) == Some(&b'!') { 2 } else { 1 };
        // `$\$#end`: each `\…$` joins the next token too.
        loop {
            let mut k = end;
            while b.get(k) == Some(&b'\\') {
                k += 1;
            }
            if b.get(k) != Some(&b'$') {
                break;
            }
            end = k + if b.get(k + 1) == Some(&b'!') { 2 } else { 1 };
        }
        let mut j = end;
        while matches!(b.get(j), Some(b' ' | b'\t')) {
            j += 1;
        }
        self.set_at(j).is_some()
            || b[end.min(b.len())..].starts_with(b"#*")
            || (b.get(end) == Some(&b'#')
                && matches!(self.directive_word(end), Some(("if" | "elseif" | "else" | "end", _))))
    }

    /// `#set(` has been read: `$ref = expr )`.
    fn set_directive(&mut self, at: usize) -> Result<Node, ParseError> {
        let target = self.reference_in_expr("#set needs `$reference = value`")?;
        let eq_at = self.i;
        match self.token()? {
            Token::Op("=") => {}
            t => return self.err(eq_at, format!("#set needs `$reference = value`, found {}", t.describe())),
        }
        let value = self.expr()?;
        self.expect(Token::RParen, "`)` closing #set")?;
        self.eat_line_end();
        Ok(Node::Set { target, value, pos: self.pos_at(at) })
    }

    /// `( expr )` after `#if`/`#elseif`, with the line end after it.
    fn paren_condition(&mut self, at: usize, what: &str) -> Result<Expr, ParseError> {
        skip_ws(self.src, &mut self.i);
        if self.bytes().get(self.i) != Some(&b'(') {
            return self.err(at, format!("{what} needs `(`"));
        }
        self.i += 1;
        let cond = self.expr()?;
        self.expect(Token::RParen, &format!("`)` closing {what}"))?;
        self.eat_line_end();
        Ok(cond)
    }

    fn if_directive(&mut self, at: usize) -> Result<Node, ParseError> {
        let mut current = self.paren_condition(at, "#if")?;
        let mut branches = Vec::new();
        loop {
            let (body, end, _) = self.block()?;
            branches.push((current, body));
            match end {
                BlockEnd::End => return Ok(Node::If { branches, otherwise: None }),
                BlockEnd::ElseIf(next) => current = next,
                BlockEnd::Else => {
                    let (otherwise, end, end_at) = self.block()?;
                    return match end {
                        BlockEnd::End => Ok(Node::If { branches, otherwise: Some(otherwise) }),
                        BlockEnd::Eof => self.err(at, "#if without #end"),
                        _ => self.err(end_at, "#else or #elseif after #else"),
                    };
                }
                BlockEnd::Eof => return self.err(at, "#if without #end"),
            }
        }
    }

    /// `#name(` follows (after whitespace): `#foreach`, `#define`, `#macro`,
    /// `#break`/`#stop` with an argument, or a macro call.
    fn directive(&mut self, name: &str, at: usize) -> Result<Option<Node>, ParseError> {
        skip_ws(self.src, &mut self.i);
        self.i += 1; // `(`
        match name {
            "foreach" => {
                let var = self.reference_in_expr("#foreach needs `($item in $list)`")?;
                if !var.parts.is_empty() {
                    return self.err(at, "#foreach needs a plain `$name` as its loop variable");
                }
                self.skip_comma()?;
                match self.token()? {
                    Token::Word(w) if w == "in" => {}
                    _ => return self.err(at, "#foreach needs `($item in $list)`"),
                }
                self.skip_comma()?;
                let iterable = self.directive_arg()?;
                self.expect(Token::RParen, "`)` closing #foreach")?;
                self.eat_line_end();
                let (body, end, _) = self.block()?;
                if !matches!(end, BlockEnd::End) {
                    return self.err(at, "#foreach without #end");
                }
                Ok(Some(Node::Foreach { var: var.root, iterable, body, pos: self.pos_at(at) }))
            }
            "define" => {
                let var = self.reference_in_expr("#define needs `($name)`")?;
                self.expect(Token::RParen, "`)` closing #define")?;
                self.eat_line_end();
                let (body, end, _) = self.block()?;
                if !matches!(end, BlockEnd::End) {
                    return self.err(at, "#define without #end");
                }
                Ok(Some(Node::Define { name: var.root, body: Arc::new(body) }))
            }
            "macro" => {
                let name = match self.token()? {
                    Token::Word(w) => w,
                    _ => return self.err(at, "#macro needs a name: #macro(name $arg …)"),
                };
                let mut params = Vec::new();
                loop {
                    let save = self.i;
                    match self.token()? {
                        Token::RParen => break,
                        Token::Comma => {}
                        Token::Dollar => {
                            self.i = save;
                            skip_ws(self.src, &mut self.i);
                            params.push(self.reference_in_expr("#macro parameters are `$name`s")?.root);
                        }
                        t => return self.err(save, format!("#macro parameters are `$name`s, found {}", t.describe())),
                    }
                }
                self.eat_line_end();
                let (body, end, _) = self.block()?;
                if !matches!(end, BlockEnd::End) {
                    return self.err(at, "#macro without #end");
                }
                self.macros.entry(name).or_insert(Macro { params, body: Arc::new(body) });
                Ok(None)
            }
            _ => {
                let mut args = Vec::new();
                loop {
                    let save = self.i;
                    match self.token()? {
                        Token::RParen => break,
                        Token::Comma => {}
                        Token::Eof => return self.err(at, format!("#{name}( without `)`")),
                        _ => {
                            self.i = save;
                            args.push(self.directive_arg()?);
                        }
                    }
                }
                self.eat_line_end();
                Ok(Some(match name {
                    "break" => Node::Break,
                    "stop" => Node::Stop,
                    _ => Node::MacroCall {
                        name: name.to_string(),
                        args,
                        pos: self.pos_at(at),
                        raw: self.src[at..self.i].to_string(),
                    },
                }))
            }
        }
    }

    fn skip_comma(&mut self) -> Result<(), ParseError> {
        let save = self.i;
        if self.token()? != Token::Comma {
            self.i = save;
        }
        Ok(())
    }

    fn token(&mut self) -> Result<Token, ParseError> {
        skip_ws(self.src, &mut self.i);
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
        skip_ws(self.src, &mut self.i);
        let at = self.i;
        let got = self.token()?;
        if got == want { Ok(()) } else { self.err(at, format!("expected {what}, found {}", got.describe())) }
    }

    /// A reference inside an expression: `$` is next (after whitespace).
    fn reference_in_expr(&mut self, what: &str) -> Result<Reference, ParseError> {
        skip_ws(self.src, &mut self.i);
        let at = self.i;
        if self.bytes().get(at) != Some(&b'$') {
            return self.err(at, what.to_string());
        }
        match self.reference_at(at)? {
            Some((r, after)) => {
                self.i = after;
                Ok(r)
            }
            None => self.err(at, what.to_string()),
        }
    }

    /// Reads `$[!][{]name([index])*(.prop|.method(args))*…[}]` at `at`, or
    /// `None` when the `$` starts no reference.
    fn reference_at(&mut self, at: usize) -> Result<Option<(Reference, usize)>, ParseError> {
        let b = self.bytes();
        let mut j = at + 1;
        if b.get(j) == Some(&b'!') {
            j += 1;
        }
        let formal = b.get(j) == Some(&b'{');
        if formal {
            j += 1;
        }
        if !b.get(j).is_some_and(|c| is_ident_start(*c)) {
            return Ok(None);
        }
        self.enter(at)?;
        let start = j;
        while j < b.len() && is_ident(b[j]) {
            j += 1;
        }
        let root = self.src[start..j].to_string();
        let mut parts = Vec::new();
        loop {
            match b.get(j) {
                Some(b'[') => {
                    self.i = j + 1;
                    let index = self.index_parameter()?;
                    self.expect(Token::RBracket, "`]`")?;
                    j = self.i;
                    parts.push(Part::Index(index));
                }
                Some(b'.') if b.get(j + 1).is_some_and(u8::is_ascii_alphabetic) => {
                    let s = j + 1;
                    let mut k = s;
                    while k < b.len() && is_ident(b[k]) {
                        k += 1;
                    }
                    let name = self.src[s..k].to_string();
                    if b.get(k) == Some(&b'(') {
                        self.i = k + 1;
                        let args = self.call_args()?;
                        j = self.i;
                        parts.push(Part::Method(name, args));
                    } else {
                        parts.push(Part::Property(name));
                        j = k;
                    }
                }
                _ => break,
            }
        }
        if formal {
            if b.get(j) != Some(&b'}') {
                return self.err(j, "`${` without `}`");
            }
            j += 1;
        }
        self.leave();
        Ok(Some((Reference { root, parts, pos: self.pos_at(at) }, j)))
    }

    /// `arg, … )` of a method call, after its `(`.
    fn call_args(&mut self) -> Result<Vec<Expr>, ParseError> {
        let mut args = Vec::new();
        if self.peek()? == Token::RParen {
            self.token()?;
            return Ok(args);
        }
        loop {
            args.push(self.parameter()?);
            let at = self.i;
            match self.token()? {
                Token::Comma => {}
                Token::RParen => return Ok(args),
                t => {
                    return self
                        .err(at, format!("expected `,` or `)` after a method argument, found {}", t.describe()));
                }
            }
        }
    }

    /// Velocity's index parameter: a string, an integer, a boolean or a reference.
    fn index_parameter(&mut self) -> Result<Expr, ParseError> {
        skip_ws(self.src, &mut self.i);
        let at = self.i;
        match self.token()? {
            Token::Int(i) => Ok(Expr::Literal(Val::Int(i))),
            Token::SingleQuoted(s) => Ok(Expr::Literal(Val::str(s))),
            Token::DoubleQuoted(s, offset) => self.string_literal(s, offset),
            Token::Word(w) if w == "true" || w == "false" => Ok(Expr::Literal(Val::Bool(w == "true"))),
            Token::Dollar => {
                self.i = at;
                Ok(Expr::Ref(self.reference_in_expr("expected a reference")?))
            }
            t => self.err(at, format!("an index must be a string, an integer or a reference, found {}", t.describe())),
        }
    }

    /// Velocity's parameter (method arguments, list items, map entries):
    /// a literal, a reference, a list, a map or a range — no operators.
    fn parameter(&mut self) -> Result<Expr, ParseError> {
        skip_ws(self.src, &mut self.i);
        let at = self.i;
        let t = self.token()?;
        match t {
            Token::Int(i) => Ok(Expr::Literal(Val::Int(i))),
            Token::Double(d) => Ok(Expr::Literal(Val::Double(d))),
            Token::SingleQuoted(s) => Ok(Expr::Literal(Val::str(s))),
            Token::DoubleQuoted(s, offset) => self.string_literal(s, offset),
            Token::Word(w) if w == "true" || w == "false" => Ok(Expr::Literal(Val::Bool(w == "true"))),
            Token::Dollar => {
                self.i = at;
                Ok(Expr::Ref(self.reference_in_expr("expected a reference")?))
            }
            Token::LBracket => self.list_or_range(at),
            Token::LBrace => self.map_literal(at),
            t => self.err(
                at,
                format!("expected a literal, a reference, a list or a map (Velocity 1.7 allows no operators here), found {}", t.describe()),
            ),
        }
    }

    /// A `#foreach` or macro-call argument: a parameter or a bare word.
    fn directive_arg(&mut self) -> Result<Expr, ParseError> {
        skip_ws(self.src, &mut self.i);
        let save = self.i;
        match self.token()? {
            Token::Word(w) if w != "true" && w != "false" => Ok(Expr::Word(w)),
            _ => {
                self.i = save;
                self.parameter()
            }
        }
    }

    /// After `[`: `]`, `a, b, …]` or `from..to]`.
    fn list_or_range(&mut self, at: usize) -> Result<Expr, ParseError> {
        self.enter(at)?;
        let result = (|| {
            if self.peek()? == Token::RBracket {
                self.token()?;
                return Ok(Expr::List(Vec::new()));
            }
            let first = self.parameter()?;
            if self.peek()? == Token::DotDot {
                self.token()?;
                let last = self.parameter()?;
                let bound = |e: &Expr| matches!(e, Expr::Ref(_) | Expr::Literal(Val::Int(_)));
                if !bound(&first) || !bound(&last) {
                    return self.err(at, "a range's ends must be integers or references");
                }
                self.expect(Token::RBracket, "`]` closing the range")?;
                return Ok(Expr::Range(Box::new(first), Box::new(last)));
            }
            let mut items = vec![first];
            loop {
                let at = self.i;
                match self.token()? {
                    Token::Comma => items.push(self.parameter()?),
                    Token::RBracket => return Ok(Expr::List(items)),
                    t => return self.err(at, format!("expected `,` or `]` in the list, found {}", t.describe())),
                }
            }
        })();
        self.leave();
        result
    }

    /// After `{`: `}` or `key: value, …}`.
    fn map_literal(&mut self, at: usize) -> Result<Expr, ParseError> {
        self.enter(at)?;
        let result = (|| {
            let mut entries = Vec::new();
            if self.peek()? == Token::RBrace {
                self.token()?;
                return Ok(Expr::Map(entries));
            }
            loop {
                let key = self.parameter()?;
                self.expect(Token::Colon, "`:` in the map")?;
                let value = self.parameter()?;
                entries.push((key, value));
                let at = self.i;
                match self.token()? {
                    Token::Comma => {}
                    Token::RBrace => return Ok(Expr::Map(entries)),
                    t => return self.err(at, format!("expected `,` or `}}` in the map, found {}", t.describe())),
                }
            }
        })();
        self.leave();
        result
    }

    /// A double-quoted string: literal, or interpolated when it holds `$` or `#`.
    fn string_literal(&mut self, s: String, offset: usize) -> Result<Expr, ParseError> {
        if !s.contains('$') && !s.contains('#') {
            return Ok(Expr::Literal(Val::str(s)));
        }
        self.enter(offset)?;
        let mut inner = Parser {
            src: &s,
            i: 0,
            base: self.base + offset,
            line_starts: Arc::clone(&self.line_starts),
            depth: self.depth,
            chain: self.chain,
            macros: HashMap::new(),
            literal_next: false,
        };
        let nodes = inner.parse();
        let macros = std::mem::take(&mut inner.macros);
        self.leave();
        for (name, m) in macros {
            self.macros.entry(name).or_insert(m);
        }
        Ok(Expr::Interpolated(nodes?))
    }

    /// An expression: `||` over `&&` over `== !=` over `< > <= >=` over `+ -` over `* / %` over `!`.
    pub fn expr(&mut self) -> Result<Expr, ParseError> {
        self.enter(self.i)?;
        let e = self.binary(0);
        self.leave();
        e
    }

    /// Precedence climbing over the operators binding at least as tightly as `min`.
    fn binary(&mut self, min: u8) -> Result<Expr, ParseError> {
        fn op_of(t: &Token) -> Option<(u8, BinOp)> {
            let Token::Op(o) = t else { return None };
            Some(match *o {
                "||" => (0, BinOp::Or),
                "&&" => (1, BinOp::And),
                "==" => (2, BinOp::Eq),
                "!=" => (2, BinOp::Ne),
                "<" => (3, BinOp::Lt),
                "<=" => (3, BinOp::Le),
                ">" => (3, BinOp::Gt),
                ">=" => (3, BinOp::Ge),
                "+" => (4, BinOp::Add),
                "-" => (4, BinOp::Sub),
                "*" => (5, BinOp::Mul),
                "/" => (5, BinOp::Div),
                "%" => (5, BinOp::Mod),
                _ => return None,
            })
        }
        skip_ws(self.src, &mut self.i);
        let left_start = self.i;
        let mut left = self.unary()?;
        let mut left_end = self.i;
        // Each operator nests the tree one level deeper (`1+1+1…`): count it.
        let mut chained = 0;
        let result = loop {
            let save = self.i;
            let op = match self.token() {
                Ok(t) => op_of(&t).filter(|(prec, _)| *prec >= min),
                Err(e) => break Err(e),
            };
            let Some((prec, op)) = op else {
                self.i = save;
                break Ok(left);
            };
            self.chain += 1;
            chained += 1;
            if self.chain > MAX_CHAIN {
                break self.err(save, format!("an expression chains more than {MAX_CHAIN} operators"));
            }
            skip_ws(self.src, &mut self.i);
            let right_start = self.i;
            match self.binary(prec + 1) {
                Ok(right) if op == BinOp::Add => {
                    let text = |s: usize, e: usize| operand_text(self.src.get(s..e).unwrap_or(""));
                    let texts = (text(left_start, left_end), text(right_start, self.i));
                    left = Expr::Add(Box::new(left), Box::new(right), Arc::new(texts));
                }
                Ok(right) => left = Expr::Binary(op, Box::new(left), Box::new(right)),
                Err(e) => break Err(e),
            }
            left_end = self.i;
        };
        self.chain -= chained;
        result
    }

    fn unary(&mut self) -> Result<Expr, ParseError> {
        let save = self.i;
        match self.token()? {
            Token::Op("!") => {
                self.enter(save)?;
                let e = self.unary();
                self.leave();
                Ok(Expr::Not(Box::new(e?)))
            }
            _ => {
                self.i = save;
                self.primary()
            }
        }
    }

    fn primary(&mut self) -> Result<Expr, ParseError> {
        skip_ws(self.src, &mut self.i);
        let at = self.i;
        match self.token()? {
            Token::LParen => {
                let e = self.expr()?;
                self.expect(Token::RParen, "`)`")?;
                Ok(e)
            }
            Token::Eof => self.err(at, "unexpected end of the template in an expression"),
            _ => {
                self.i = at;
                self.parameter()
            }
        }
    }
}
