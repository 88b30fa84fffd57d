//! Building a function's component from Python or JavaScript source, with
//! the language's own component toolchain: `componentize-py` for a
//! Lambda-style `lambda_handler(event, context)`, `componentize-js` for a
//! Node-style `handler(event, context)`.
//!
//! A build stages, in a fresh temporary directory, the WIT worlds of
//! `guest-functions/wit` (`python`, `javascript`: the function world plus
//! what the adapters use), the adapter of the language
//! (`guest-functions/python`, `guest-functions/js`: all embedded in the
//! binary, so an installed wasmgate builds anywhere) and an entry naming the
//! handler, then runs the toolchain and returns the component's bytes.
//!
//! Toolchains are found in the directory the caller names (`--toolchains`,
//! `WASMGATE_TOOLCHAINS`: `python/bin`, `node_modules/.bin` and `bin`
//! under it, as `tools/install-toolchains.sh` lays them out) and then on
//! `PATH`, and must be the pinned versions the adapters are tested with.
//! A language is added by an adapter that exports `handle` over the
//! language's handler, a world in `lambda.wit`, and a [`Language`] here.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// The componentize-py release the Python adapter is built and tested with.
pub const COMPONENTIZE_PY_VERSION: &str = "0.25.1";
/// The componentize-js release the JavaScript adapter is built and tested with.
pub const COMPONENTIZE_JS_VERSION: &str = "0.23.0";
/// The environment variable naming the toolchains' directory.
pub const TOOLCHAINS_ENV: &str = "WASMGATE_TOOLCHAINS";

const FUNCTION_WIT: &str = include_str!("../wit/handler.wit");
const LAMBDA_WIT: &str = include_str!("../../guest-functions/wit/lambda.wit");
const WASI_WIT: [(&str, &str); 7] = [
    ("cli.wit", include_str!("../../guest-functions/wit/deps/cli.wit")),
    ("clocks.wit", include_str!("../../guest-functions/wit/deps/clocks.wit")),
    ("filesystem.wit", include_str!("../../guest-functions/wit/deps/filesystem.wit")),
    ("http.wit", include_str!("../../guest-functions/wit/deps/http.wit")),
    ("io.wit", include_str!("../../guest-functions/wit/deps/io.wit")),
    ("random.wit", include_str!("../../guest-functions/wit/deps/random.wit")),
    ("sockets.wit", include_str!("../../guest-functions/wit/deps/sockets.wit")),
];
const PYTHON_ADAPTER: [(&str, &str); 2] = [
    ("wasmgate_lambda.py", include_str!("../../guest-functions/python/wasmgate_lambda.py")),
    ("wasmgate_http.py", include_str!("../../guest-functions/python/wasmgate_http.py")),
];
const JS_ADAPTER: (&str, &str) = ("wasmgate_lambda.mjs", include_str!("../../guest-functions/js/wasmgate_lambda.mjs"));
/// The entry module componentize-js starts from, beside the user's code.
const JS_ENTRY: &str = "__wasmgate_entry.mjs";

/// A source language `wasmgate build` knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Language {
    Python,
    JavaScript,
}

impl Language {
    pub fn name(self) -> &'static str {
        match self {
            Language::Python => "Python",
            Language::JavaScript => "JavaScript",
        }
    }

    /// Lambda's default handler for the language's runtime.
    pub fn default_handler(self) -> &'static str {
        match self {
            Language::Python => "lambda_function.lambda_handler",
            Language::JavaScript => "index.handler",
        }
    }

    fn extensions(self) -> &'static [&'static str] {
        match self {
            Language::Python => &["py"],
            Language::JavaScript => &["mjs", "js"],
        }
    }

    fn of_file(path: &Path) -> Option<Language> {
        match path.extension()?.to_str()? {
            "py" => Some(Language::Python),
            "mjs" | "js" => Some(Language::JavaScript),
            _ => None,
        }
    }

    fn toolchain(self) -> Toolchain {
        match self {
            Language::Python => Toolchain {
                command: "componentize-py",
                version: COMPONENTIZE_PY_VERSION,
                install: "pip install componentize-py==0.25.1",
            },
            Language::JavaScript => Toolchain {
                command: "componentize-js",
                version: COMPONENTIZE_JS_VERSION,
                install: "npm install -g @bytecodealliance/componentize-js@0.23.0 (it runs on Node.js 18 or later)",
            },
        }
    }
}

impl std::fmt::Display for Language {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

struct Toolchain {
    command: &'static str,
    version: &'static str,
    install: &'static str,
}

/// Errors of a build.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error("{path}: no such file or directory")]
    NotFound { path: String },
    #[error("{path}: not a Python (.py) or JavaScript (.mjs, .js) source file")]
    UnknownLanguage { path: String },
    #[error(
        "{dir}: no handler module found (looked for {looked_for}); name the handler with --handler MODULE.FUNCTION"
    )]
    NoEntry { dir: String, looked_for: String },
    #[error("{dir}: both {first} and {second} could be the handler's module; name it with --handler MODULE.FUNCTION")]
    AmbiguousEntry { dir: String, first: String, second: String },
    #[error("handler {handler:?}: {message}")]
    BadHandler { handler: String, message: String },
    #[error(
        "{command} {version} is needed to build {language} functions and was not found ({searched}).\n  \
         install it: {install}\n  \
         or name the directory it is installed in with --toolchains DIR (or {TOOLCHAINS_ENV}); \
         tools/install-toolchains.sh installs both toolchains into a directory"
    )]
    ToolchainMissing {
        command: &'static str,
        version: &'static str,
        language: Language,
        searched: String,
        install: &'static str,
    },
    #[error(
        "{path} is {found:?}, but wasmgate's {language} adapter is built with {command} {version}: install it: {install}"
    )]
    ToolchainVersion {
        path: String,
        found: String,
        command: &'static str,
        version: &'static str,
        language: Language,
        install: &'static str,
    },
    #[error("{command} could not build {source_path}:\n{output}")]
    Failed { command: &'static str, source_path: String, output: String },
    #[error("{0}")]
    Io(String),
}

fn io(context: &str) -> impl Fn(std::io::Error) -> BuildError + '_ {
    move |e| BuildError::Io(format!("{context}: {e}"))
}

/// What to build, beyond the source.
#[derive(Debug, Clone, Default)]
pub struct BuildOptions {
    /// `MODULE.FUNCTION`, as Lambda's `Handler` setting. Default: Lambda's
    /// (`lambda_function.lambda_handler`, `index.handler`); for a single
    /// file, its own module and the language's default function.
    pub handler: Option<String>,
    /// Where the toolchains are installed (else `WASMGATE_TOOLCHAINS`, then `PATH`).
    pub toolchains: Option<PathBuf>,
}

/// A built component.
#[derive(Debug)]
pub struct Built {
    pub wasm: Vec<u8>,
    pub language: Language,
    /// `MODULE.FUNCTION`.
    pub handler: String,
    /// e.g. `componentize-py 0.25.1`.
    pub toolchain: String,
    pub elapsed: Duration,
}

/// What a build will do, known before it runs (for progress messages).
#[derive(Debug, Clone)]
pub struct Plan {
    pub source: Source,
    tool: PathBuf,
    pub toolchain: String,
}

/// Works out the language, the handler and the toolchain of `source` (a
/// file, or a directory holding the handler's module), without building.
pub fn plan(source: &Path, opts: &BuildOptions) -> Result<Plan, BuildError> {
    let source = check_source(source, opts)?;
    let (tool, toolchain) = find_toolchain(source.language, opts.toolchains.as_deref())?;
    Ok(Plan { source, tool, toolchain })
}

/// What a source is: its language, its handler and where its module is.
#[derive(Debug, Clone)]
pub struct Source {
    pub language: Language,
    /// `MODULE.FUNCTION`.
    pub handler: String,
    /// The directory holding the handler's module (and any modules it imports).
    root: PathBuf,
    /// The handler's module file, relative to `root`.
    module_file: PathBuf,
    /// The source was one file (copied alone), not a directory.
    single_file: bool,
}

/// Checks that `source` is a Python or JavaScript source with the handler's
/// module, without looking for a toolchain.
pub fn check_source(source: &Path, opts: &BuildOptions) -> Result<Source, BuildError> {
    let shown = source.display().to_string();
    let meta = std::fs::metadata(source).map_err(|_| BuildError::NotFound { path: shown.clone() })?;
    let (language, root, module_file, handler, single_file) = if meta.is_file() {
        let language = Language::of_file(source).ok_or(BuildError::UnknownLanguage { path: shown.clone() })?;
        let stem = source.file_stem().and_then(|s| s.to_str()).unwrap_or_default().to_string();
        let default_function = language.default_handler().rsplit_once('.').map_or("handler", |(_, f)| f);
        let handler = match &opts.handler {
            Some(h) => {
                let (module, _) = split_handler(h)?;
                if module != stem {
                    return Err(BuildError::BadHandler {
                        handler: h.clone(),
                        message: format!("its module is {module:?}, but the source file is {shown}"),
                    });
                }
                h.clone()
            }
            None => format!("{stem}.{default_function}"),
        };
        let root = source.parent().map(Path::to_path_buf).unwrap_or_default();
        (language, root, PathBuf::from(source.file_name().unwrap_or_default()), handler, true)
    } else {
        let (language, module_file, handler) = find_entry(source, opts.handler.as_deref())?;
        (language, source.to_path_buf(), module_file, handler, false)
    };
    Ok(Source { language, handler, root, module_file, single_file })
}

fn split_handler(handler: &str) -> Result<(&str, &str), BuildError> {
    let bad = |message: &str| BuildError::BadHandler { handler: handler.into(), message: message.into() };
    let (module, function) =
        handler.rsplit_once('.').ok_or_else(|| bad("expected MODULE.FUNCTION, e.g. lambda_function.lambda_handler"))?;
    let identifier = |s: &str| {
        !s.is_empty()
            && !s.starts_with(|c: char| c.is_ascii_digit())
            && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '$')
    };
    if !module.split(['/', '.']).all(identifier) {
        return Err(bad("the module must be a file's name without its extension, e.g. lambda_function"));
    }
    if !identifier(function) {
        return Err(bad("the function must be a name, e.g. lambda_handler"));
    }
    Ok((module, function))
}

/// The handler's module in a directory: the one `handler` names, or
/// Lambda's default of whichever language has one.
fn find_entry(dir: &Path, handler: Option<&str>) -> Result<(Language, PathBuf, String), BuildError> {
    let shown = dir.display().to_string();
    let candidates: Vec<(Language, String)> = match handler {
        Some(h) => [Language::Python, Language::JavaScript].into_iter().map(|l| (l, h.to_string())).collect(),
        None => [Language::Python, Language::JavaScript].into_iter().map(|l| (l, l.default_handler().into())).collect(),
    };
    let mut found: Vec<(Language, PathBuf, String)> = Vec::new();
    let mut looked_for = Vec::new();
    for (language, handler) in candidates {
        let (module, _) = split_handler(&handler)?;
        for ext in language.extensions() {
            let file = PathBuf::from(format!("{module}.{ext}"));
            looked_for.push(file.display().to_string());
            if dir.join(&file).is_file() {
                found.push((language, file, handler.clone()));
                break;
            }
        }
    }
    match found.len() {
        0 => Err(BuildError::NoEntry { dir: shown, looked_for: looked_for.join(", ") }),
        1 => Ok(found.remove(0)),
        _ => Err(BuildError::AmbiguousEntry {
            dir: shown,
            first: found[0].1.display().to_string(),
            second: found[1].1.display().to_string(),
        }),
    }
}

/// The toolchain's command: in `dir` (or `WASMGATE_TOOLCHAINS`), else on `PATH`.
fn find_toolchain(language: Language, dir: Option<&Path>) -> Result<(PathBuf, String), BuildError> {
    let t = language.toolchain();
    let env_dir = std::env::var_os(TOOLCHAINS_ENV).map(PathBuf::from);
    let mut places: Vec<PathBuf> = Vec::new();
    for d in dir.map(Path::to_path_buf).into_iter().chain(env_dir) {
        places.extend([d.join("python/bin"), d.join("node_modules/.bin"), d.join("bin")]);
    }
    let named = places.len();
    places.extend(std::env::var_os("PATH").map(|p| std::env::split_paths(&p).collect::<Vec<_>>()).unwrap_or_default());
    let Some(tool) = places.iter().map(|d| d.join(t.command)).find(|p| p.is_file()) else {
        let searched = if named > 0 {
            format!(
                "in {} and on PATH",
                places[..named].iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", ")
            )
        } else {
            "on PATH".to_string()
        };
        return Err(BuildError::ToolchainMissing {
            command: t.command,
            version: t.version,
            language,
            searched,
            install: t.install,
        });
    };
    let missing_node = || BuildError::ToolchainMissing {
        command: "node",
        version: "18 or later",
        language,
        searched: format!("on PATH, which {} runs on", tool.display()),
        install: "Node.js from your system's packages (e.g. apt install nodejs) or nodejs.org",
    };
    let out = Command::new(&tool).arg("--version").output().map_err(|e| {
        if language == Language::JavaScript && e.kind() == std::io::ErrorKind::NotFound {
            missing_node()
        } else {
            BuildError::Io(format!("{}: {e}", tool.display()))
        }
    })?;
    let found = String::from_utf8_lossy(&out.stdout).trim().to_string();
    if !out.status.success() && language == Language::JavaScript && found.is_empty() {
        return Err(missing_node());
    }
    // componentize-py prints `componentize-py 0.25.1`, componentize-js `0.23.0`.
    if found.rsplit(' ').next() != Some(t.version) {
        return Err(BuildError::ToolchainVersion {
            path: tool.display().to_string(),
            found,
            command: t.command,
            version: t.version,
            language,
            install: t.install,
        });
    }
    Ok((tool, format!("{} {}", t.command, t.version)))
}

/// A temporary directory, removed when dropped.
struct Staging(PathBuf);

impl Staging {
    fn new() -> Result<Staging, BuildError> {
        let dir = std::env::temp_dir().join(format!("wasmgate-build-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).map_err(io("creating a build directory"))?;
        Ok(Staging(dir))
    }

    fn write(&self, relative: &str, text: &str) -> Result<PathBuf, BuildError> {
        let path = self.0.join(relative);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(io("writing the build directory"))?;
        }
        std::fs::write(&path, text).map_err(io("writing the build directory"))?;
        Ok(path)
    }
}

impl Drop for Staging {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn stage_wit(staging: &Staging) -> Result<PathBuf, BuildError> {
    staging.write("wit/lambda.wit", LAMBDA_WIT)?;
    staging.write("wit/deps/wasmgate-function/handler.wit", FUNCTION_WIT)?;
    for (name, text) in WASI_WIT {
        staging.write(&format!("wit/deps/{name}"), text)?;
    }
    Ok(staging.0.join("wit"))
}

/// Copies `from` into `to`, leaving out version control and dependency
/// caches that a component never needs.
fn copy_tree(from: &Path, to: &Path) -> Result<(), BuildError> {
    std::fs::create_dir_all(to).map_err(io("copying the source"))?;
    for entry in std::fs::read_dir(from).map_err(io("reading the source"))? {
        let entry = entry.map_err(io("reading the source"))?;
        let name = entry.file_name();
        if [".git", "__pycache__", ".venv"].iter().any(|n| name == *n) {
            continue;
        }
        let (src, dst) = (entry.path(), to.join(&name));
        if entry.file_type().map_err(io("reading the source"))?.is_dir() {
            copy_tree(&src, &dst)?;
        } else {
            std::fs::copy(&src, &dst).map_err(io("copying the source"))?;
        }
    }
    Ok(())
}

/// Builds the component `plan` describes.
pub fn build(plan: &Plan) -> Result<Built, BuildError> {
    let started = Instant::now();
    let src = &plan.source;
    let staging = Staging::new()?;
    let wit = stage_wit(&staging)?;
    // The user's code, under `app/`: a single file alone, a directory whole.
    let app = staging.0.join("app");
    if src.single_file {
        std::fs::create_dir_all(&app).map_err(io("copying the source"))?;
        std::fs::copy(src.root.join(&src.module_file), app.join(&src.module_file)).map_err(io("copying the source"))?;
    } else {
        copy_tree(&src.root, &app)?;
    }
    let (module, function) = split_handler(&src.handler)?;
    let out = staging.0.join("function.wasm");
    let mut cmd = Command::new(&plan.tool);
    match src.language {
        Language::Python => {
            for (name, text) in PYTHON_ADAPTER {
                staging.write(&format!("adapter/{name}"), text)?;
            }
            staging.write(
                "adapter/wasmgate_handler_name.py",
                &format!(
                    "# Written by `wasmgate build`.\nHANDLER_MODULE = {}\nHANDLER_FUNCTION = {}\n",
                    quoted(&module.replace('/', ".")),
                    quoted(function),
                ),
            )?;
            cmd.arg("-d").arg(&wit).args(["-w", "python", "componentize", "-p"]);
            cmd.arg(staging.0.join("adapter")).arg("-p").arg(&app).arg("wasmgate_lambda").arg("-o").arg(&out);
        }
        Language::JavaScript => {
            std::fs::write(app.join(JS_ADAPTER.0), JS_ADAPTER.1).map_err(io("writing the build directory"))?;
            let module_path = format!("./{}", src.module_file.display());
            let entry = format!(
                "// Written by `wasmgate build`.\nimport * as module from {};\nimport {{ lambdaHandle }} from './{}';\n\
                 export const handle = lambdaHandle(module[{}], {});\n",
                quoted(&module_path),
                JS_ADAPTER.0,
                quoted(function),
                quoted(&src.handler),
            );
            std::fs::write(app.join(JS_ENTRY), entry).map_err(io("writing the build directory"))?;
            cmd.arg(app.join(JS_ENTRY)).arg("-w").arg(&wit).args(["-n", "javascript", "-o"]).arg(&out);
        }
    }
    let output = cmd.current_dir(&staging.0).output().map_err(io(src.language.toolchain().command))?;
    if !output.status.success() || !out.is_file() {
        return Err(BuildError::Failed {
            command: src.language.toolchain().command,
            source_path: src.root.join(&src.module_file).display().to_string(),
            output: failure_text(&output, &staging.0, &src.root),
        });
    }
    let wasm = std::fs::read(&out).map_err(io("reading the built component"))?;
    Ok(Built {
        wasm,
        language: src.language,
        handler: src.handler.clone(),
        toolchain: plan.toolchain.clone(),
        elapsed: started.elapsed(),
    })
}

/// Plans and builds `source`.
pub fn build_source(source: &Path, opts: &BuildOptions) -> Result<Built, BuildError> {
    build(&plan(source, opts)?)
}

/// What the toolchain said, without its own backtraces, with the staging
/// directory's paths put back as the user's.
fn failure_text(output: &std::process::Output, staging: &Path, root: &Path) -> String {
    let text = format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    let app = format!("{}/", staging.join("app").display());
    let user = if root.as_os_str().is_empty() { String::new() } else { format!("{}/", root.display()) };
    let mut lines: Vec<String> = Vec::new();
    for line in text.lines() {
        // componentize-py follows the error with Rust's backtrace.
        if line.trim_start() == "Stack backtrace:" {
            break;
        }
        lines.push(line.replace(&app, &user));
    }
    while lines.last().is_some_and(|l| l.trim().is_empty()) {
        lines.pop();
    }
    let lines: Vec<String> = lines.into_iter().map(|l| format!("  {l}")).collect();
    lines.join("\n")
}

/// `s` as a string literal that Python and JavaScript both read (JSON's).
fn quoted(s: &str) -> String {
    serde_json::to_string(s).expect("a string serialises")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn handlers_are_module_dot_function() {
        assert_eq!(split_handler("lambda_function.lambda_handler").unwrap(), ("lambda_function", "lambda_handler"));
        assert_eq!(split_handler("src/app.handler").unwrap(), ("src/app", "handler"));
        for bad in ["handler", "a.", ".f", "a b.c", "1x.f"] {
            assert!(matches!(split_handler(bad), Err(BuildError::BadHandler { .. })), "{bad}");
        }
    }

    #[test]
    fn a_directory_is_built_from_lambdas_default_module() {
        let dir = std::env::temp_dir().join(format!("wasmgate-entry-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).unwrap();
        let err = find_entry(&dir, None).unwrap_err().to_string();
        assert!(err.contains("lambda_function.py, index.mjs, index.js"), "{err}");
        std::fs::write(dir.join("index.mjs"), "export const handler = () => 1;").unwrap();
        let (language, file, handler) = find_entry(&dir, None).unwrap();
        assert_eq!(
            (language, file, handler.as_str()),
            (Language::JavaScript, PathBuf::from("index.mjs"), "index.handler")
        );
        std::fs::write(dir.join("app.py"), "def main(e, c): pass").unwrap();
        let (language, _, handler) = find_entry(&dir, Some("app.main")).unwrap();
        assert_eq!((language, handler.as_str()), (Language::Python, "app.main"));
        std::fs::write(dir.join("lambda_function.py"), "").unwrap();
        assert!(matches!(find_entry(&dir, None), Err(BuildError::AmbiguousEntry { .. })));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
