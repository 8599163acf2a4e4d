#!/usr/bin/env python3
"""Checks the layering of hydra's Swift sources (scripts/test runs it):

1. no cycle between the folders of a target, by type references: a folder that names a type
   declared in another folder depends on it, and the folders' dependencies must form no cycle;
2. system calls only in the system layer (Sources/HydraSystem, Sources/HydraFastCGI): nothing
   else imports Glibc, nor all of Foundation (which re-exports Glibc on Linux): the other
   layers import FoundationEssentials, so the compiler refuses a raw call there. SwiftNIO
   re-exports Glibc, so in HydraGate the compiler would let one through: there the check looks
   for the calls themselves (a free function of the C library, errno, `Glibc.`);
3. file-system calls only in the system layer too: FoundationEssentials still has FileManager
   and the path-based reads and writes of String and Data, which follow links and write
   without a mode; elsewhere they are refused (HydraSystem's FileSystem and DirectoryHandle
   have what hydra needs, without following a link a person may have planted).

Prints each problem and exits 1 when there is one; prints the layers it found otherwise.
`--self-test` first shows that it catches a planted cycle and a planted import.
"""
import pathlib
import re
import sys
import tempfile

SOURCES = pathlib.Path(__file__).resolve().parents[2] / "Sources"
SYSTEM_LAYER = {"HydraSystem", "HydraFastCGI"}
# Raw C calls as they would appear outside the system layer: not a method (no "." before them),
# not a declaration, and no argument label (hydra's own functions of those names take labels).
RAW_CALL = re.compile(r"(?<![.\w])(?<!func )(?:Glibc\.\w+|errno\b(?!\s*:)|(?:open|openat|close|read|write|unlink|unlinkat|rename|renameat|"
                      r"stat|lstat|fstat|fstatat|mkdir|mkdirat|chmod|fchmod|chown|fchown|kill|waitpid|umask|statvfs|"
                      r"socket|connect|bind|listen|accept|setsockopt|getsockopt|fcntl|usleep|sleep|strerror|getuid|"
                      r"geteuid|getpid|setrlimit|getrlimit|mount|symlinkat|access|pipe)\s*\((?!\s*\w+\s*:))")
FOUNDATION_FILE_CALL = re.compile(r"\bFileManager\b|\bFileHandle\b|contentsOfFile:|\(contentsOf:|\.write\((?:to|toFile):|createFile\(atPath")
SYSTEM_IMPORT = re.compile(r"^\s*(?:@_exported\s+)?import\s+(Glibc|Foundation)\s*$", re.M)
# A type declared at the top level of a file (nested types, such as the many CodingKeys, are
# their enclosing type's and are reached through it).
DECLARATION = re.compile(r"^(?:(?:public|package|internal|private|fileprivate|final|indirect)\s+)*"
                         r"(?:struct|class|enum|protocol|actor|typealias)\s+([A-Z][A-Za-z0-9_]*)", re.M)
COMMENT = re.compile(r"//[^\n]*|/\*.*?\*/", re.S)
STRING = re.compile(r'"""(?:.|\n)*?"""|"(?:\\.|[^"\\\n])*"')


def code_of(path):
    return STRING.sub('""', COMMENT.sub("", path.read_text()))


def folders_of(target):
    """folder (relative to the target, "." for its top) -> its Swift files."""
    folders = {}
    for path in sorted(target.rglob("*.swift")):
        folders.setdefault(str(path.parent.relative_to(target)), []).append(path)
    return folders


def cycles(graph):
    """Every cycle found by a depth-first search, as a list of folders."""
    found, state, stack = [], {}, []

    def visit(node):
        state[node] = "open"
        stack.append(node)
        for other in sorted(graph.get(node, ())):
            if state.get(other) == "open":
                found.append(stack[stack.index(other):] + [other])
            elif other not in state:
                visit(other)
        stack.pop()
        state[node] = "done"
    for node in sorted(graph):
        if node not in state:
            visit(node)
    return found


def problems_in(sources, show=print):
    problems = []
    for target in sorted(p for p in sources.iterdir() if p.is_dir() and any(p.rglob("*.swift"))):
        folders = folders_of(target)
        declared = {}
        for folder, files in folders.items():
            for path in files:
                for name in DECLARATION.findall(code_of(path)):
                    declared.setdefault(name, folder)
        graph = {}
        for folder, files in folders.items():
            text = "\n".join(code_of(p) for p in files)
            uses = {declared[word] for word in set(re.findall(r"\b[A-Z][A-Za-z0-9_]*\b", text)) if word in declared}
            graph[folder] = uses - {folder}
        for cycle in cycles(graph):
            problems.append(f"{target.name}: folders depend on each other: {' -> '.join(cycle)}")
        if len(folders) > 1:
            show(f"{target.name}: " + "; ".join(f"{f} -> {', '.join(sorted(graph[f])) or '-'}" for f in sorted(graph)))
        if target.name not in SYSTEM_LAYER:
            for path in sorted(target.rglob("*.swift")):
                for module in SYSTEM_IMPORT.findall(path.read_text()):
                    problems.append(f"{path.relative_to(sources.parent)} imports {module}: system calls belong in "
                                    "Sources/HydraSystem (import FoundationEssentials for Data, JSON and dates)")
                for number, line in enumerate(code_of(path).splitlines(), 1):
                    if call := FOUNDATION_FILE_CALL.search(line):
                        problems.append(f"{path.relative_to(sources.parent)}:{number} uses Foundation's {call.group(0).strip('(:.')} "
                                        "for files: use HydraSystem's FileSystem or DirectoryHandle")
                # Only where an import lets the C library in anyway (SwiftNIO re-exports Glibc).
                lines = code_of(path).splitlines() if re.search(r"^import NIO", path.read_text(), re.M) else []
                for number, line in enumerate(lines, 1):
                    if call := RAW_CALL.search(line):
                        problems.append(f"{path.relative_to(sources.parent)}:{number} calls {call.group(0).rstrip('(').strip()} "
                                        "directly: wrap it in Sources/HydraSystem")
    return problems


def self_test():
    """The check must fail on what it exists to catch."""
    with tempfile.TemporaryDirectory() as scratch:
        sources = pathlib.Path(scratch) / "Sources"
        for relative, text in {
            "Core/A/Alpha.swift": "package struct Alpha { let b: Beta }\n",
            "Core/B/Beta.swift": "package struct Beta { let a: [Alpha] }\n",
            "Core/C/Gamma.swift": "import Foundation\nstruct Gamma {}\n",
            "Core/C/Delta.swift": "import FoundationEssentials\nfunc mark(_ path: String) {\n"
                                  "    _ = FileManager.default.createFile(atPath: path, contents: nil)\n}\n",
            "Gate/Splice.swift": "import NIOCore\nfunc end(_ fd: Int32) { handle.close(); close(fd) }\n",
            "HydraSystem/Raw.swift": "import Glibc\nstruct Raw {}\n",
        }.items():
            (sources / relative).parent.mkdir(parents=True, exist_ok=True)
            (sources / relative).write_text(text)
        found = problems_in(sources, show=lambda _: None)
    expected = ["Core: folders depend on each other: A -> B -> A",
                "Sources/Core/C/Delta.swift:3 uses Foundation's FileManager for files: use HydraSystem's FileSystem or DirectoryHandle",
                "Sources/Core/C/Gamma.swift imports Foundation: system calls belong in Sources/HydraSystem "
                "(import FoundationEssentials for Data, JSON and dates)",
                "Sources/Gate/Splice.swift:2 calls close directly: wrap it in Sources/HydraSystem"]
    if found != expected:
        print("layering self-test: expected", expected, "got", found)
        return False
    return True


def main():
    if "--self-test" in sys.argv and not self_test():
        return 1
    problems = problems_in(SOURCES)
    for problem in problems:
        print("layering:", problem)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
