//! The expression lexer: the tokens inside a directive's parentheses and a
//! method call's arguments (`#if($a.size() > 1 && $b)`). Template text itself
//! is scanned by the parser, which hands over to this lexer inside `( … )`.

/// An expression token.
#[derive(Debug, Clone, PartialEq)]
pub enum Token {
    /// `$` starts a reference; the parser reads the reference itself.
    Dollar,
    Int(i64),
    Double(f64),
    /// A double-quoted string (raw content, interpolated later).
    DoubleQuoted(String),
    /// A single-quoted string (literal).
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

/// Reads one token at `*i` of `src`, skipping whitespace. Errors are messages.
pub fn next_token(src: &str, i: &mut usize) -> Result<Token, String> {
    let b = src.as_bytes();
    while *i < b.len() && b[*i].is_ascii_whitespace() {
        *i += 1;
    }
    let Some(&c) = b.get(*i) else { return Ok(Token::Eof) };
    let two = |s: &str| src[*i..].starts_with(s);
    let tok = |t: Token, n: usize, i: &mut usize| {
        *i += n;
        Ok(t)
    };
    match c {
        b'$' => tok(Token::Dollar, 0, i),
        b'(' => tok(Token::LParen, 1, i),
        b')' => tok(Token::RParen, 1, i),
        b'[' => tok(Token::LBracket, 1, i),
        b']' => tok(Token::RBracket, 1, i),
        b'{' => tok(Token::LBrace, 1, i),
        b'}' => tok(Token::RBrace, 1, i),
        b',' => tok(Token::Comma, 1, i),
        b':' => tok(Token::Colon, 1, i),
        b'.' if two("..") => tok(Token::DotDot, 2, i),
        b'=' if two("==") => tok(Token::Op("=="), 2, i),
        b'!' if two("!=") => tok(Token::Op("!="), 2, i),
        b'<' if two("<=") => tok(Token::Op("<="), 2, i),
        b'>' if two(">=") => tok(Token::Op(">="), 2, i),
        b'&' if two("&&") => tok(Token::Op("&&"), 2, i),
        b'|' if two("||") => tok(Token::Op("||"), 2, i),
        b'=' => tok(Token::Op("="), 1, i),
        b'!' => tok(Token::Op("!"), 1, i),
        b'<' => tok(Token::Op("<"), 1, i),
        b'>' => tok(Token::Op(">"), 1, i),
        b'+' => tok(Token::Op("+"), 1, i),
        b'-' => tok(Token::Op("-"), 1, i),
        b'*' => tok(Token::Op("*"), 1, i),
        b'/' => tok(Token::Op("/"), 1, i),
        b'%' => tok(Token::Op("%"), 1, i),
        b'"' | b'\'' => {
            let quote = c;
            let start = *i + 1;
            let mut j = start;
            while j < b.len() && b[j] != quote {
                // A doubled quote stands for one quote, as in Velocity.
                j += 1;
            }
            if j >= b.len() {
                return Err("unterminated string literal".into());
            }
            let mut content = src[start..j].to_string();
            *i = j + 1;
            while b.get(*i) == Some(&quote) && b.get(*i + 1).is_some() {
                // "a""b" → a"b
                let rest_start = *i + 1;
                let mut k = rest_start;
                while k < b.len() && b[k] != quote {
                    k += 1;
                }
                if k >= b.len() {
                    return Err("unterminated string literal".into());
                }
                content.push(quote as char);
                content.push_str(&src[rest_start..k]);
                *i = k + 1;
            }
            Ok(if quote == b'"' { Token::DoubleQuoted(content) } else { Token::SingleQuoted(content) })
        }
        b'0'..=b'9' => {
            let start = *i;
            while *i < b.len() && b[*i].is_ascii_digit() {
                *i += 1;
            }
            // `1..3` is a range, `1.5` a double.
            if b.get(*i) == Some(&b'.') && b.get(*i + 1).is_some_and(u8::is_ascii_digit) {
                *i += 1;
                while *i < b.len() && b[*i].is_ascii_digit() {
                    *i += 1;
                }
                return src[start..*i].parse().map(Token::Double).map_err(|e| format!("bad number: {e}"));
            }
            src[start..*i].parse().map(Token::Int).map_err(|_| format!("integer {} is too large", &src[start..*i]))
        }
        c if c.is_ascii_alphabetic() || c == b'_' => {
            let start = *i;
            while *i < b.len() && (b[*i].is_ascii_alphanumeric() || b[*i] == b'_') {
                *i += 1;
            }
            Ok(Token::Word(src[start..*i].to_string()))
        }
        other => Err(format!("unexpected character {:?}", other as char)),
    }
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
            all(r#"1 1.5 [1..3] "a" 'b' == && foo"#),
            vec![
                Token::Int(1),
                Token::Double(1.5),
                Token::LBracket,
                Token::Int(1),
                Token::DotDot,
                Token::Int(3),
                Token::RBracket,
                Token::DoubleQuoted("a".into()),
                Token::SingleQuoted("b".into()),
                Token::Op("=="),
                Token::Op("&&"),
                Token::Word("foo".into()),
            ]
        );
    }
}
