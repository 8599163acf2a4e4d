import Foundation
import PackagePlugin

/// Turns each Python file of a target into a Swift string constant of that target, at build
/// time: jupyter_config.py becomes `jupyterConfigPy`. The programs carry the text (they are
/// statically linked, without resources) and write it where it runs, on hosts where hydra is not
/// installed too (a Slurm job's node); the file itself stays real Python that tools can check.
@main struct EmbedPython: BuildToolPlugin {
    func createBuildCommands(context: PluginContext, target: Target) throws -> [Command] {
        guard let files = target.sourceModule?.sourceFiles(withSuffix: "py") else { return [] }
        return try files.map { file in
            let name = try constantName(file.url.deletingPathExtension().lastPathComponent)
            let output = context.pluginWorkDirectoryURL.appending(path: "\(name).swift")
            // A raw string literal holds the text byte for byte; only its closing delimiter or
            // `\#` (an escape in it) could change the meaning, so a file holding either fails.
            let script = ##"""
                if grep -q -e '"""#' -e '\\#' "$1"; then
                    echo "EmbedPython: $1 holds \"\"\"# or \\#, which a Swift raw string cannot carry" >&2
                    exit 1
                fi
                { printf 'let %s = #"""\n' "$3"; cat "$1"; printf '\n"""#\n'; } >"$2"
                """##
            return .buildCommand(displayName: "embedding \(file.url.lastPathComponent)", executable: URL(filePath: "/bin/sh"),
                                 arguments: ["-c", script, "embed-python", file.url.path, output.path, name],
                                 inputFiles: [file.url], outputFiles: [output])
        }
    }

    /// snake_case.py to snakeCasePy: a Swift identifier, or an error naming the file.
    func constantName(_ stem: String) throws -> String {
        let words = stem.split(separator: "_").map(String.init) + ["py"]
        let name = words[0].lowercased() + words.dropFirst().map(\.capitalized).joined()
        guard let first = name.first, first.isLetter, name.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber) }) else {
            throw PluginError(message: "EmbedPython: \(stem).py: the file name must be snake_case letters and digits")
        }
        return name
    }
}

struct PluginError: Error, CustomStringConvertible {
    let message: String
    var description: String { message }
}
