//! One test per construct, each asserting exact output. The pairs in
//! `check(&[(template, expected), …])` were checked against the Velocity
//! 1.7 reference renderer; the tests after them cover what it cannot
//! (the public API, JSONPath filters, limits, errors' positions).

use serde_json::json;
use wasmgate_host::template::{
    ParseError, RenderError, Template, TemplateContext, TemplateError, TemplateInput, render_once,
};

fn render_with(source: &str, input: &TemplateInput, ctx: &mut TemplateContext) -> String {
    match Template::parse(source) {
        Ok(t) => t.render(input, ctx).unwrap_or_else(|e| panic!("{source:?}: render error {e}")),
        Err(e) => panic!("{source:?}: parse error {e}"),
    }
}

fn render(source: &str) -> String {
    render_with(source, &TemplateInput::default(), &mut TemplateContext::new(json!({})))
}

/// Renders each template with an empty request and compares.
fn check(pairs: &[(&str, &str)]) {
    for (template, expected) in pairs {
        assert_eq!(render(template), *expected, "template {template:?}");
    }
}

fn body(b: &str) -> TemplateInput {
    TemplateInput { body: b.into(), ..TemplateInput::default() }
}

fn parse_err(source: &str) -> ParseError {
    match Template::parse(source) {
        Ok(_) => panic!("{source:?} should not parse"),
        Err(e) => e,
    }
}

fn render_err(source: &str) -> RenderError {
    let t = Template::parse(source).unwrap_or_else(|e| panic!("{source:?}: {e}"));
    match t.render(&TemplateInput::default(), &mut TemplateContext::new(json!({}))) {
        Ok(out) => panic!("{source:?} should fail, rendered {out:?}"),
        Err(e) => e,
    }
}

#[test]
fn references() {
    check(&[
        (r#"#set($a = "x")$a ${a} $!a $!{a}|${a}y"#, r#"x x x x|xy"#),
        (r#"[$nope][$!nope][${nope}]"#, r#"[][][]"#),
        (r#"#set($m = {"b": {"c": 1}})$m.b.c $m["b"]["c"] $m.get("b").c"#, r#"1 1 1"#),
        (r#"#set($l = ["a", "b"])$l[0]$l[1] $l[-1]"#, r#"ab b"#),
        (r#"#set($a-b = 1)$a-b|$a-"#, r#"1|"#),
        (r#"#set($a = "x")$a.b (x) $a._b $a.1"#, r#" (x) x._b x.1"#),
    ]);
}

#[test]
fn dollar_without_identifier_is_text() {
    check(&[
        (
            r#"{"path": "$.a", "root": "$", "list": "$[0]", "cost": "$ 5"}"#,
            r#"{"path": "$.a", "root": "$", "list": "$[0]", "cost": "$ 5"}"#,
        ),
        (r#"$1 $! x ${ $!{ $!-"#, r#"$1 $ x ${ $!{ $-"#),
    ]);
}

#[test]
fn escapes() {
    check(&[
        (r#"#set($x = 1)\$x \\$x \\\$x"#, r#"$x \1 \$x"#),
        (r#"\$nope \\$nope"#, r#"$nope \"#),
        (r#"\#if(true) \#foo \#end"#, r#"#if(true) \#foo #end"#),
        (r#"a\b \"#, r#"a\b \"#),
    ]);
}

#[test]
fn comments_and_unparsed_blocks() {
    check(&[
        ("a ## comment\nb\n## full line\nc", "a b\nc"),
        ("a #* block\ncomment *# b\n#* x *#\nc", "a  b\n\nc"),
        ("a#** doc *#b", "ab"),
        ("#[[ $x #if ]]# done", " $x #if  done"),
        ("a #* never closed", "a "),
    ]);
}

#[test]
fn set() {
    check(&[
        ("#set($x = 1)$x", "1"),
        ("#{set}($x = 5)$x", "5"),
        ("#set ($x = 2)$x", "2"),
        ("#set($a = \"old\")#set($a = 1 / 0)$a", "old"),
        ("#set($m = {})#set($m.a = 1)#set($m[\"b\"] = 2)$m", "{a=1, b=2}"),
        ("#set($l = [1, 2, 3])#set($l[1] = \"x\")$l", "[1, x, 3]"),
        ("#set($m = {\"a\": {}})#set($m.a.c = 2)$m", "{a={c=2}}"),
    ]);
}

#[test]
fn set_whitespace() {
    check(&[
        ("a\n#set($x = 1)\nb", "a\nb"),
        ("a #set($x = 1)\nb", "a b"),
        ("a\n  #set($x = 1)\nb", "a\n  b"),
        ("   #set($a = 1)\n$a", "1"),
        ("#set($a = 1)$a #set($b = 2)$b", "12"),
        ("#set($a = 1)   \nx#set($b = 2)   y", "x   y"),
        ("#set($a = 1)\r\nx", "x"),
    ]);
}

#[test]
fn block_directive_whitespace() {
    check(&[
        ("#if(true)x#end\ny", "xy"),
        ("#if(true)   \nx#end   \ny", "xy"),
        ("#if(true)a#end  d", "a  d"),
        ("#if(false)\na\n#elseif(true)\nb\n#else\nc\n#end\nd", "b\nd"),
        (
            "<ul>\n  #foreach($i in [1, 2])\n  <li>$i</li>\n  #end\n</ul>",
            "<ul>\n    <li>1</li>\n    <li>2</li>\n  </ul>",
        ),
        ("#set($m = {})\n$m.put('a', 1)\nz", "\nz"),
    ]);
}

#[test]
fn string_literals() {
    check(&[
        (r#"#set($n = 3)#set($s = "n=$n ${n}x #if($n > 2)big#end")$s"#, r#"n=3 3x big"#),
        (r#"#set($n = 3)#set($s = 'n=$n')$s"#, r#"n=$n"#),
        (r#"#set($s = "a\tb")$s"#, r#"a\tb"#),
        (r#"#set($s = "say ""hi""")$s|#set($t = 'it''s')$t"#, r#"say "hi"|it's"#),
    ]);
}

#[test]
fn numbers() {
    check(&[
        ("#set($a = 7 / 2)#set($b = -7 / 2)#set($c = 7 % 3)#set($d = -7 % 3)$a $b $c $d", "3 -3 1 -1"),
        (
            "#set($a = 1 * 1.5)#set($b = 3 * 1.5)#set($c = 0.1 + 0.2)#set($d = 10 / 4.0)$a $b $c $d",
            "1.5 4.5 0.30000000000000004 2.5",
        ),
        ("#set($a = 1.0 * 10000000)#set($b = 1.0 / 10000)$a $b", "1.0E7 1.0E-4"),
        ("#set($a = 2147483647 + 1)$a", "2147483648"),
        ("#set($a = -5)#set($b = 2.50)#set($c = 1e3)$a $b $c", "-5 2.5 1000.0"),
        ("#set($a = 1 + 2 * 3)#set($b = (1 + 2) * 3)#set($c = 10 - 2 - 3)$a $b $c", "7 9 5"),
        ("#set($a = \"foo\" + 1)#set($b = 1 + \"foo\")#set($c = \"x\" + 1.5)$a $b $c", "foo1 1foo x1.5"),
        ("#set($a = 3 * -1)$a", "-3"),
    ]);
}

#[test]
fn conditions() {
    check(&[
        ("#if(2 > 1 && 1 < 2 && 2 >= 2 && 2 <= 2 && 1 != 2 && 1 == 1.0)ok#end", "ok"),
        ("#if(2 gt 1 and 1 lt 2 and 2 ge 2 and 2 le 2 and 1 ne 2 and 1 eq 1)ok#end", "ok"),
        ("#if(not false or false)a#end#if(!(1 == 2))b#end#if( ! false )c#end", "abc"),
        ("#set($x = 2)#if($x == 1)one#elseif($x == 2)two#else other#end", "two"),
        ("#{if}(true)a#{else}b#{end}c", "ac"),
        ("#if($missing)T#{else}F#end #if(!$missing)T#{else}F#end", "T F"),
        ("#if($missing == $null)A#end #if($missing == \"\")B#end", "A B"),
        ("#set($e = \"\")#if($e)T#{else}F#end", "T"),
        ("#set($l = [])#if($l)T#end#if($l.isEmpty())E#end", "TE"),
        ("#if(1 == \"1\")a#end#if(\"true\" == true)b#end#if(\"a\" < \"b\")c#end", "ab"),
    ]);
}

#[test]
fn foreach() {
    check(&[
        ("#foreach($x in [1, 2, 3])$x#if($foreach.hasNext),#end#end", "1,2,3"),
        (
            "#foreach($x in [\"a\", \"b\"])$foreach.index/$foreach.count/$velocityCount/$foreach.first/$foreach.last #end",
            "0/1/1/true/false 1/2/2/false/true ",
        ),
        (
            "#foreach($i in [1..3])$i#end|#foreach($i in [3..1])$i#end|#set($n = 2)#foreach($i in [0..$n])$i#end",
            "123|321|012",
        ),
        ("#set($m = {\"a\": 1, \"b\": 2})#foreach($v in $m)$v;#end", "1;2;"),
        ("#set($m = {\"a\": 1})#foreach($e in $m.entrySet())$e.key:$e.value $e#end", "a:1 a=1"),
        ("#foreach($i in [1..10])#if($i > 3)#break#end$i#end.", "123."),
        ("#set($x = \"outer\")#foreach($x in [1, 2])$x#end $x", "12 outer"),
        ("#foreach($x in $missing)never#end ok", " ok"),
        ("a#foreach($i in [1, 2, 3])$i#if($i == 2)#stop#end#end b", "a12"),
        ("#foreach($i in [1, 2])#end[$foreach.count][$velocityCount]", "[][]"),
    ]);
}

#[test]
fn define_and_macros() {
    check(&[
        (
            "#define($greet)Hello $name#end#set($name = \"Ann\")$greet! #set($name = \"Bo\")$greet",
            "Hello Ann! Hello Bo",
        ),
        ("#macro(tag $name $val)<$name>$val</$name>#end#tag(\"a\" 1)#tag('b', \"two\")", "<a>1</a><b>two</b>"),
        ("#macro(line $x)\n- $x\n#end\n#line(1)\n#line(2)\nend", "- 1\n- 2\nend"),
        ("#later(2)#macro(later $x)[$x]#end", "[2]"),
        ("#nomacro(1) #nomacro", "#nomacro(1) #nomacro"),
    ]);
}

#[test]
fn string_methods() {
    check(&[
        (
            r#"#set($s = "Hello, World")$s.length() $s.toLowerCase() $s.toUpperCase() $s.substring(7) $s.substring(0, 5) $s.indexOf("o") $s.lastIndexOf("o") $s.charAt(4)"#,
            r#"12 hello, world HELLO, WORLD World Hello 4 8 o"#,
        ),
        (
            r#"#set($s = "  pad  ")[$s.trim()] $s.isEmpty() $s.contains("pad") $s.startsWith("  p") $s.endsWith("x") $s.equals("  pad  ") $s.equalsIgnoreCase("  PAD  ")"#,
            r#"[pad] false true true false true true"#,
        ),
        (
            r#"#set($s = "a.b.c")$s.replace(".", "-") $s.replaceAll("\.", "+") $s.replaceFirst("[.]", "/") $s.replaceAll("(\w)", "<$1>")"#,
            r#"a-b-c a+b+c a/b.c <a>.<b>.<c>"#,
        ),
        (r#"#set($s = "a,b,,c,,")#set($p = $s.split(","))$p.size() #foreach($x in $p)[$x]#end"#, r#"4 [a][b][][c]"#),
        (r#"#set($s = "abc123")$s.matches("[a-z]+[0-9]+") $s.matches("[a-z]+")"#, r#"true false"#),
        (r#"#set($s = "ab")$s.concat("cd") $s.toString()|$s.length|$s.empty"#, r#"abcd ab||false"#),
        (r#"#set($s = "abcabc")$s.indexOf("b", 2) $s.indexOf("z")"#, r#"4 -1"#),
    ]);
}

#[test]
fn list_methods() {
    check(&[
        (
            "#set($l = [1, 2, 3])$l.size() $l.get(0) $l.contains(2) $l.contains(5) $l.isEmpty() $l.indexOf(3) $l",
            "3 1 true false false 2 [1, 2, 3]",
        ),
        (
            "#set($l = [])$l.add(1) $l.addAll([2, 3]) $l $l.remove(0) $l $l.set(0, \"z\") $l",
            "true true [1, 2, 3] 1 [2, 3] 2 [z, 3]",
        ),
        ("#set($l = [1, \"two\", 3.5, true, [4], {\"k\": \"v\"}])$l", "[1, two, 3.5, true, [4], {k=v}]"),
    ]);
}

#[test]
fn map_methods() {
    check(&[
        (
            r#"#set($m = {"a": 1, "b": "two"})$m.size() $m.get("a") $m.b $m.containsKey("a") $m.containsKey("z") $m.containsValue("two") $m.keySet() $m.values() $m.isEmpty()"#,
            r#"2 1 two true false true [a, b] [1, two] false"#,
        ),
        (r#"#set($m = {})$m.put("a", 1)|$m.put("a", 2)|$m|$m.remove("a")|$m"#, r#"|1|{a=2}|2|{}"#),
        (r#"#set($m = {"a": 1})#set($d = $m.putAll({"b": 2, "a": 3}))$m"#, r#"{a=3, b=2}"#),
        (r#"#set($m = {})[$m.empty]"#, r#"[]"#),
        (r#"#set($m = {"a": [1, {"b": 2}], "c": {"d": ["e"]}})$m"#, r#"{a=[1, {b=2}], c={d=[e]}}"#),
    ]);
}

#[test]
fn input_body_and_paths() {
    let doc = r#"{"a": {"b": "c", "n": 5, "f": 1.5}, "list": [1, 2, 3], "objs": [{"foo": "bar"}, {"foo": "baz"}]}"#;
    let mut ctx = TemplateContext::new(json!({}));
    let r = |t: &str, ctx: &mut TemplateContext| render_with(t, &body(doc), ctx);
    assert_eq!(r("$input.body", &mut ctx), doc);
    assert_eq!(
        r("$input.path('$.a')|$input.path('$.list')|$input.path('$.objs[1].foo')", &mut ctx),
        r#"{b=c, n=5, f=1.5}|[1,2,3]|baz"#
    );
    assert_eq!(
        r("$input.json('$.a')|$input.json('$.a.b')|$input.json('$.missing')", &mut ctx),
        r#"{"b":"c","n":5,"f":1.5}|"c"|"""#
    );
    assert_eq!(
        r("$input.json('$..foo')|$input.path('$.objs[*].foo')|$input.path('$.list').size()", &mut ctx),
        r#"["bar","baz"]|["bar","baz"]|3"#
    );
    assert_eq!(r("$input.path('$.objs')[0].foo $input.json('a.n')", &mut ctx), "bar 5");
    assert_eq!(render_with("[$input.body]", &body(""), &mut ctx), "[{}]");
    assert_eq!(
        render_with("$input.body|$input.json('$')|[$input.path('$')]", &body("not json"), &mut ctx),
        r#"not json|""|[]"#
    );
}

#[test]
fn jsonpath_filters() {
    // The reference renderer has no filters; these follow RFC 9535 / Jayway.
    let doc = r#"{"items": [{"id": 1, "price": 5}, {"id": 2, "price": 15}, {"id": 3, "price": 25}]}"#;
    let mut ctx = TemplateContext::new(json!({}));
    assert_eq!(render_with("$input.json('$.items[?(@.price > 10)].id')", &body(doc), &mut ctx), "[2,3]");
    assert_eq!(render_with("$input.path('$.items[?(@.id == 1)]')", &body(doc), &mut ctx), r#"[{"id":1,"price":5}]"#);
    assert_eq!(render_with("$input.path('$.items[?@.price < 10].price').size()", &body(doc), &mut ctx), "1");
}

#[test]
fn input_params() {
    let mut input = TemplateInput::default();
    input.path.insert("ID".into(), "7".into());
    input.querystring.insert("q".into(), "find me".into());
    input.header.insert("X-Trace".into(), "t1".into());
    input.path.insert("k".into(), "p".into());
    input.querystring.insert("k".into(), "q".into());
    let mut ctx = TemplateContext::new(json!({}));
    assert_eq!(
        render_with(
            "$input.params('ID')|$input.params('q')|$input.params('x-trace')|[$input.params('none')]|$input.params('k')",
            &input,
            &mut ctx
        ),
        "7|find me|t1|[]|p"
    );
    assert_eq!(
        render_with("$input.params()|$input.params().path.ID|$input.params().header.get('X-Trace')", &input, &mut ctx),
        "{path={ID=7, k=p}, querystring={q=find me, k=q}, header={X-Trace=t1}}|7|t1"
    );
}

#[test]
fn util_functions() {
    check(&[
        (r#"$util.escapeJavaScript("it's ""q"" / é	tab")"#, r#"it\'s \"q\" \/ \u00E9\ttab"#),
        (
            r#"$util.urlEncode('a b&c=d/é~*._-')|$util.urlDecode('a+b%26c%3Dd%2F%C3%A9')"#,
            r#"a+b%26c%3Dd%2F%C3%A9%7E*._-|a b&c=d/é"#,
        ),
        (
            r#"$util.base64Encode('hello wörld')|$util.base64Decode('aGVsbG8gd8O2cmxk')"#,
            r#"aGVsbG8gd8O2cmxk|hello wörld"#,
        ),
        (
            r#"#set($o = $util.parseJson('{"a": [1, {"b": null}], "c": 1.0}'))$o|$o.a[1]|$o.c"#,
            r#"{a=[1,{"b":null}], c=1.0}|{b=null}|1.0"#,
        ),
        (r#"[$util.urlEncode($missing)][$util.base64Encode($missing)][$util.nope('x')]"#, r#"[][][]"#),
    ]);
}

#[test]
fn context_and_stage_variables() {
    let mut ctx = TemplateContext::new(json!({
        "requestId": "req-1", "stage": "prod", "identity": {"sourceIp": "10.0.0.1"}, "authorizer": {"claims": {"sub": "s-1"}}
    }));
    let mut input = TemplateInput::default();
    input.stage_variables.insert("env".into(), "dev".into());
    assert_eq!(
        render_with(
            "$context.requestId $context.stage $context.identity.sourceIp $context.authorizer.claims.sub [$context.identity.apiKey] $context['stage']",
            &input,
            &mut ctx
        ),
        "req-1 prod 10.0.0.1 s-1 [] prod"
    );
    assert_eq!(
        render_with(
            "$stageVariables.env|$stageVariables['env']|${stageVariables['env']}|[$stageVariables.nope]",
            &input,
            &mut ctx
        ),
        "dev|dev|dev|[]"
    );
}

#[test]
fn overrides_are_read_back() {
    let mut ctx = TemplateContext::new(json!({"requestId": "r"}));
    let t = r#"#set($context.responseOverride.status = 201)
#set($context.responseOverride.header.X-Foo = "bar")
#set($k = "q1")
#set($context.requestOverride.querystring[$k] = "v1")
$context.requestOverride.header.put("h", "hv")
#set($context["requestOverride"].path["p"] = "pv")
done"#;
    assert_eq!(render_with(t, &TemplateInput::default(), &mut ctx), "\ndone");
    assert_eq!(ctx.response_override_status(), Some(201));
    assert_eq!(ctx.response_override_headers(), vec![("X-Foo".to_string(), "bar".to_string())]);
    assert_eq!(ctx.request_overrides("querystring"), vec![("q1".to_string(), "v1".to_string())]);
    assert_eq!(ctx.request_overrides("header"), vec![("h".to_string(), "hv".to_string())]);
    assert_eq!(ctx.request_overrides("path"), vec![("p".to_string(), "pv".to_string())]);
    assert_eq!(ctx.get("responseOverride.status"), Some(json!(201)));
    assert_eq!(ctx.get("requestId"), Some(json!("r")));
    // The response template sees what the request template set.
    assert_eq!(render_with("$context.requestOverride.querystring.q1", &TemplateInput::default(), &mut ctx), "v1");
}

#[test]
fn override_status_rules() {
    for (set, want) in
        [("444", Some(444)), ("\"202\"", Some(202)), ("99", None), ("600", None), ("2.5", None), ("\"x\"", None)]
    {
        let mut ctx = TemplateContext::new(json!({}));
        render_with(&format!("#set($context.responseOverride.status = {set})"), &TemplateInput::default(), &mut ctx);
        assert_eq!(ctx.response_override_status(), want, "status {set}");
    }
    assert_eq!(TemplateContext::new(json!({})).response_override_status(), None);
}

#[test]
fn parse_errors_have_positions() {
    let e = parse_err("line one\n  #if(true)x");
    assert_eq!((e.line, e.column), (2, 3));
    assert_eq!(e.to_string(), format!("line 2, column 3: {}", e.message));
    for bad in [
        "#set($a = (1 + 2)",
        "#set(1 = 2)",
        "price in $",
        "x#end",
        "#set($s = \"abc\")$s.substring($s.length() - 1)",
        "#set($l = [1, 2 + 3])",
        "#set($x = 5-1)",
        "#set($x = null)",
        "#set($x = \"abc)",
        "#if true)x#end",
        "${a",
        "#set($a = 1)$a #set($b = 2)[x]",
        "#foreach($i)x#end",
        "#else",
    ] {
        assert!(Template::parse(bad).is_err(), "{bad:?} should not parse");
    }
}

#[test]
fn render_errors_have_positions() {
    let e = render_err("ok\n  $util.parseJson('{nope')");
    assert_eq!((e.line, e.column), (2, 3));
    assert!(e.to_string().starts_with("line 2, column 3: "), "{e}");
    render_err("#set($s = \"abc\")$s.substring(5)");
    render_err("#set($l = [1])$l[3]");
    render_err("#set($l = [1])$l.get(3)");
    render_err("$util.base64Decode('!!!')");
}

#[test]
fn render_once_reports_both_kinds() {
    let mut ctx = TemplateContext::new(json!({}));
    let input = TemplateInput::default();
    assert_eq!(render_once("#set($a = 2)$a", &input, &mut ctx).unwrap(), "2");
    assert!(matches!(render_once("#if(", &input, &mut ctx), Err(TemplateError::Parse(_))));
    assert!(matches!(render_once("$util.parseJson('x')", &input, &mut ctx), Err(TemplateError::Render(_))));
}

#[test]
fn templates_are_shared_between_threads() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Template>();
    let t = std::sync::Arc::new(Template::parse("#set($l = [])#set($d = $l.add(1))$l").unwrap());
    let handles: Vec<_> = (0..4)
        .map(|_| {
            let t = t.clone();
            std::thread::spawn(move || {
                t.render(&TemplateInput::default(), &mut TemplateContext::new(json!({}))).unwrap()
            })
        })
        .collect();
    for h in handles {
        // A list literal is new on every render.
        assert_eq!(h.join().unwrap(), "[1]");
    }
}

#[test]
fn limits() {
    // 300 KB of template.
    let big = "x".repeat(300 * 1024 + 1);
    assert!(parse_err(&big).message.contains("larger than"));
    assert!(Template::parse(&"x".repeat(300 * 1024)).is_ok());
    // Deep nesting is a parse error, not a stack overflow.
    for deep in [
        format!("#set($a = {}1{})", "(".repeat(100_000), ")".repeat(100_000)),
        format!("#set($a = {}true)", "!".repeat(100_000)),
        format!("#set($a = {}1{})", "[".repeat(50_000), "]".repeat(50_000)),
        "#if(true)".repeat(20_000),
        format!("#set($a = {}{})", "\"#set($b = ".repeat(5_000), "1)\"".repeat(5_000)),
        format!("$a{}", ".b(".repeat(50_000)),
    ] {
        assert!(Template::parse(&deep).is_err());
    }
    // #foreach stops after 1000 items.
    assert_eq!(render("#foreach($i in [1..5000])#set($n = $i)#end$n"), "1000");
    // Output and steps are bounded.
    let e = render_err(
        "#set($s = \"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\")#foreach($a in [1..1000])#foreach($b in [1..1000])$s#end#end",
    );
    assert!(e.message.contains("larger than") || e.message.contains("steps"), "{e}");
    let e = render_err("#foreach($a in [1..1000])#foreach($b in [1..1000])#foreach($c in [1..1000])#end#end#end");
    assert!(e.message.contains("steps"), "{e}");
    // Macros recursing forever.
    let e = render_err("#macro(r $x)#r($x)#end#r(1)");
    assert!(e.message.contains("nest"), "{e}");
    let e = render_err("#define($d)$d#end$d");
    assert!(e.message.contains("nest"), "{e}");
    // Values that double on every iteration hit a limit instead of eating memory.
    for hostile in [
        "#set($s = \"xxxxxxxxxx\")#foreach($i in [1..40])#set($s = $s + $s)#end",
        "#set($s = \"xxxxxxxxxx\")#foreach($i in [1..40])#set($s = \"$s$s\")#end",
        "#set($s = \"xxxxxxxxxx\")#foreach($i in [1..40])#set($s = $s.concat($s))#end",
        "#set($s = \"xxxxxxxxxx\")#foreach($i in [1..40])#set($s = $s.replace(\"x\", $s))#end",
        "#set($s = \"xxxxxxxxxx\")#foreach($i in [1..40])#set($s = $s.replaceAll(\"x\", \"$0$0\"))#end",
        "#set($l = [1])#foreach($i in [1..40])#set($d = $l.addAll($l))#end",
        "#set($l = [])#foreach($i in [1..60])#set($l = [$l, $l])#end$l",
        "#set($l = [])#foreach($i in [1..60])#set($l = [$l, $l])#end#set($m = [])#foreach($i in [1..60])#set($m = [$m, $m])#end#if($l == $m)eq#end$l.toString().length()",
    ] {
        let t = Template::parse(hostile).unwrap();
        let mut ctx = TemplateContext::new(json!({}));
        // An error, or a bounded result: either way it returns.
        if let Ok(out) = t.render(&TemplateInput::default(), &mut ctx) {
            assert!(out.len() <= 10 * 1024 * 1024, "{hostile}");
        }
    }
    assert!(Template::parse(&format!("#set($a = 1{})", " + 1".repeat(1000))).is_err());
    assert!(Template::parse(&format!("#set($a = {}1{})", "(".repeat(65), ")".repeat(65))).is_err());
    assert_eq!(render(&format!("#set($a = 1{})$a", " + 1".repeat(100))), "101");
    // A map holding itself prints and compares without hanging.
    assert_eq!(
        render("#set($m = {})#set($d = $m.put(\"self\", $m))$m #if($m == $m)eq#end $m.containsValue({})"),
        "{self=(this Map)} eq false"
    );
}

#[test]
fn knows_which_templates_use_context() {
    let uses = |source: &str| Template::parse(source).unwrap().uses_context();
    // The seed's request template: the gateway need not build `$context` for it.
    assert!(!uses(r#"{ "ID": $input.params("ID") }"#));
    assert!(!uses("#foreach($i in $input.path('$')) $i.name #end"));
    assert!(uses("$context.requestId"));
    assert!(uses("#set($c = ${context})$c.stage"));
    assert!(uses("#set($context.responseOverride.status = 404)"));
    // A template that does not use it renders with an unused one.
    let mut unused = TemplateContext::unused();
    assert_eq!(render_with(r#"{"n": $input.json('$.n')}"#, &body(r#"{"n": 3}"#), &mut unused), r#"{"n": 3}"#);
}
