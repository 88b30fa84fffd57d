//! The expression lexer: the tokens inside a directive's parentheses, a
//! method call's arguments and an index (`#if($a.size() > 1 && $b)`). The
//! template text itself is scanned by the parser, which hands over to this
//! lexer inside `( … )`, `[ … ]` and `{ … }`.
//!
//! It follows Velocity 1.7's DIRECTIVE lexer state: `-1` is one integer
//! token (so `5-1` is two numbers, a parse error, while `5 - 1` is a
//! subtraction), `1..3` is a range, `1.` and `1e3` are doubles, and the
//! word operators `and or not eq ne lt gt le ge` stand for their symbols.

/// An expression token.
#[derive(Debug, Clone, PartialEq)]
pub enum Token {
    /// `$` starts a reference; the parser reads the reference itself.
    Dollar,
    Int(i64),
    Double(f64),
    /// A double-quoted string: its content (`""` folded to `"`) and the
    /// offset of the content in the source, for positions when it is interpolated.
    DoubleQuoted(String, usize),
    /// A single-quoted string (literal, `''` folded to `'`).
    SingleQuoted(String),
    Word(String),
    Op(&'static str),
    LParen,
    RParen,
    LBracket,
    RBracket,
    LBrace,
    RBrace,
    Comma,
    Colon,
    DotDot,
    Eof,
}

impl Token {
    /// How the token reads in an error message.
    pub fn describe(&self) -> String {
        match self {
            Token::Dollar => "`$`".into(),
            Token::Int(i) => format!("`{i}`"),
            Token::Double(d) => format!("`{d}`"),
            Token::DoubleQuoted(s, _) => format!("\"{s}\""),
            Token::SingleQuoted(s) => format!("'{s}'"),
            Token::Word(w) => format!("`{w}`"),
            Token::Op(o) => format!("`{o}`"),
            Token::LParen => "`(`".into(),
            Token::RParen => "`)`".into(),
            Token::LBracket => "`[`".into(),
            Token::RBracket => "`]`".into(),
            Token::LBrace => "`{`".into(),
            Token::RBrace => "`}`".into(),
            Token::Comma => "`,`".into(),
            Token::Colon => "`:`".into(),
            Token::DotDot => "`..`".into(),
            Token::Eof => "the end of the template".into(),
        }
    }
}

/// Skips whitespace (newlines included) from `*i`.
pub fn skip_ws(src: &str, i: &mut usize) {
    let b = src.as_bytes();
    while *i < b.len() && matches!(b[*i], b' ' | b'\t' | b'\n' | b'\r') {
        *i += 1;
    }
}

/// Reads one token at `*i` of `src`, skipping whitespace first. A `$` is
/// not consumed (the parser reads the reference). Errors are messages.
pub fn next_token(src: &str, i: &mut usize) -> Result<Token, String> {
    skip_ws(src, i);
    let b = src.as_bytes();
    let Some(&c) = b.get(*i) else { return Ok(Token::Eof) };
    let starts = |s: &str| src.as_bytes()[*i..].starts_with(s.as_bytes());
    let one = |t: Token, n: usize, i: &mut usize| {
        *i += n;
        Ok(t)
    };
    match c {
        b'$' => Ok(Token::Dollar),
        b'(' => one(Token::LParen, 1, i),
        b')' => one(Token::RParen, 1, i),
        b'[' => one(Token::LBracket, 1, i),
        b']' => one(Token::RBracket, 1, i),
        b'{' => one(Token::LBrace, 1, i),
        b'}' => one(Token::RBrace, 1, i),
        b',' => one(Token::Comma, 1, i),
        b':' => one(Token::Colon, 1, i),
        b'.' if starts("..") => one(Token::DotDot, 2, i),
        b'=' if starts("==") => one(Token::Op("=="), 2, i),
        b'!' if starts("!=") => one(Token::Op("!="), 2, i),
        b'<' if starts("<=") => one(Token::Op("<="), 2, i),
        b'>' if starts(">=") => one(Token::Op(">="), 2, i),
        b'&' if starts("&&") => one(Token::Op("&&"), 2, i),
        b'|' if starts("||") => one(Token::Op("||"), 2, i),
        b'=' => one(Token::Op("="), 1, i),
        b'!' => one(Token::Op("!"), 1, i),
        b'<' => one(Token::Op("<"), 1, i),
        b'>' => one(Token::Op(">"), 1, i),
        b'+' => one(Token::Op("+"), 1, i),
        b'*' => one(Token::Op("*"), 1, i),
        b'/' => one(Token::Op("/"), 1, i),
        b'%' => one(Token::Op("%"), 1, i),
        b'-' if b.get(*i + 1).is_some_and(u8::is_ascii_digit)
            || (b.get(*i + 1) == Some(&b'.') && b.get(*i + 2).is_some_and(u8::is_ascii_digit)) =>
        {
            number(src, i)
        }
        b'-' => one(Token::Op("-"), 1, i),
        b'0'..=b'9' => number(src, i),
        b'.' if b.get(*i + 1).is_some_and(u8::is_ascii_digit) => number(src, i),
        b'"' | b'\'' => string(src, i, c),
        c if c.is_ascii_alphabetic() || c == b'_' || c == b'@' => {
            let start = *i;
            while *i < b.len() && (b[*i].is_ascii_alphanumeric() || b[*i] == b'_' || b[*i] == b'@') {
                *i += 1;
            }
            let word = &src[start..*i];
            Ok(match word {
                "and" => Token::Op("&&"),
                "or" => Token::Op("||"),
                "not" => Token::Op("!"),
                "eq" => Token::Op("=="),
                "ne" => Token::Op("!="),
                "lt" => Token::Op("<"),
                "gt" => Token::Op(">"),
                "le" => Token::Op("<="),
                "ge" => Token::Op(">="),
                w => Token::Word(w.to_string()),
            })
        }
        _ => {
            let ch = src[*i..].chars().next().unwrap_or('?');
            Err(format!("unexpected character {ch:?}"))
        }
    }
}

/// `-?digits`, `-?digits.digits*`, `-?.digits`, with an optional exponent.
fn number(src: &str, i: &mut usize) -> Result<Token, String> {
    let b = src.as_bytes();
    let start = *i;
    if b[*i] == b'-' {
        *i += 1;
    }
    let digits = |i: &mut usize| {
        while *i < b.len() && b[*i].is_ascii_digit() {
            *i += 1;
        }
    };
    digits(i);
    let mut double = false;
    // `1..3` is a range: the integer stops before `..`.
    if b.get(*i) == Some(&b'.') && b.get(*i + 1) != Some(&b'.') {
        double = true;
        *i += 1;
        digits(i);
    }
    if matches!(b.get(*i), Some(b'e' | b'E')) {
        let mut j = *i + 1;
        if matches!(b.get(j), Some(b'+' | b'-')) {
            j += 1;
        }
        if b.get(j).is_some_and(u8::is_ascii_digit) {
            *i = j;
            digits(i);
            double = true;
        }
    }
    let text = &src[start..*i];
    if double {
        text.parse().map(Token::Double).map_err(|_| format!("bad number {text}"))
    } else {
        text.parse().map(Token::Int).map_err(|_| format!("integer {text} is too large"))
    }
}

/// A string literal; a doubled quote stands for one quote, as in Velocity.
fn string(src: &str, i: &mut usize, quote: u8) -> Result<Token, String> {
    let b = src.as_bytes();
    let start = *i + 1;
    let mut j = start;
    let mut content = String::new();
    let mut chunk = start;
    loop {
        match b.get(j) {
            None => return Err("unterminated string literal".into()),
            Some(&c) if c == quote => {
                content.push_str(&src[chunk..j]);
                if b.get(j + 1) == Some(&quote) {
                    content.push(quote as char);
                    j += 2;
                    chunk = j;
                } else {
                    *i = j + 1;
                    break;
                }
            }
            Some(_) => j += 1,
        }
    }
    Ok(if quote == b'"' { Token::DoubleQuoted(content, start) } else { Token::SingleQuoted(content) })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all(src: &str) -> Vec<Token> {
        let mut i = 0;
        let mut out = Vec::new();
        loop {
            let t = next_token(src, &mut i).unwrap();
            if t == Token::Eof {
                return out;
            }
            if t == Token::Dollar {
                i += 1;
            }
            out.push(t);
        }
    }

    #[test]
    fn tokens() {
        assert_eq!(
            all(r#"1 1.5 [1..3] "a" 'b''c' == && foo -1 - 2 1e3 and"#),
            vec![
                Token::Int(1),
                Token::Double(1.5),
                Token::LBracket,
                Token::Int(1),
                Token::DotDot,
                Token::Int(3),
                Token::RBracket,
                Token::DoubleQuoted("a".into(), 14),
                Token::SingleQuoted("b'c".into()),
                Token::Op("=="),
                Token::Op("&&"),
                Token::Word("foo".into()),
                Token::Int(-1),
                Token::Op("-"),
                Token::Int(2),
                Token::Double(1000.0),
                Token::Op("&&"),
            ]
        );
    }
}
