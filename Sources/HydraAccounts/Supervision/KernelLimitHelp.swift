import HydraSite
import HydraSystem
import FoundationEssentials

/// What a kernel says below the error when one of the site's limits makes Python fail in it:
/// past memory_max an allocation fails and Python raises MemoryError (always when detached,
/// where memory_max is RLIMIT_DATA; under systemd for one allocation larger than the machine
/// grants), and at tasks_max a fork or a new thread fails with EAGAIN. ipynb-launch writes an
/// IPython extension with these words into the runtime directory at each start; the server's
/// configuration (Home/jupyter_config.py, given the module name by JupyterSettings) has every
/// IPython kernel load it.
package struct KernelLimitHelp: Sendable, Equatable, Encodable {
    /// Shown after a MemoryError.
    package let memory: String?
    /// Shown after a fork or thread refused with EAGAIN.
    package let tasks: String?

    package init(_ supervision: Supervision) {
        let limits = supervision.limits
        let detached = supervision.mode == .detached
        let ask = "ask the site's administrators if you need more."
        memory = limits.memoryMaxBytes.map {
            let scope = detached ? "per process" : "with all its kernels together"
            return "This notebook server may use at most \(ResourceLimits.mebibytes($0)) of memory \(scope) (the site's limit, "
                + "limits.memory_max). Free some memory (del large variables) or restart the kernel; \(ask)"
        }
        tasks = limits.tasksMax.map {
            // RLIMIT_NPROC counts every process of the account; TasksMax only the server's unit.
            let who = detached ? "Your account" : "This notebook server"
            return "\(who) may run at most \($0) processes and threads at once (the site's limit, limits.tasks_max), and that "
                + "many are running. End some (other kernels, terminals, workers) or restart the kernel; \(ask)"
        }
    }

    /// Nothing to explain: no memory or task limit.
    package var isEmpty: Bool { memory == nil && tasks == nil }

    /// The extension's module name (`--IPKernelApp.extra_extensions=` in the kernels' command line).
    package static let moduleName = "hydra_limits"
    static let wordsFile = "hydra_limits.json"

    /// The extension and its words in `folder`, the person's alone: rewritten at each start, so
    /// the words follow the limits of hydra.toml.
    package func write(into folder: DirectoryHandle) throws {
        try folder.writeAtomically("\(Self.moduleName).py", Array(Self.moduleSource.utf8), staging: folder, mode: 0o600)
        try folder.writeAtomically(Self.wordsFile, Array(try JSONEncoder().encode(self)), staging: folder, mode: 0o600)
    }

    static let moduleSource = """
        # Written by hydra's ipynb-launch at each start of the notebook server; the words are in
        # \(wordsFile) beside it, with this person's limits.
        \"\"\"hydra: after a MemoryError, or a fork or thread refused with EAGAIN, says which of the
        site's limits caused it and what to do.\"\"\"
        import errno
        import json
        import os
        import sys


        def load_ipython_extension(shell):
            # IPython keeps one such handler: one the person's own extension set stays.
            if shell.custom_exceptions:
                return
            with open(os.path.join(os.path.dirname(__file__), "\(wordsFile)")) as f:
                words = json.load(f)

            def words_for(value):
                if isinstance(value, MemoryError):
                    return words.get("memory")
                if isinstance(value, BlockingIOError) and value.errno == errno.EAGAIN:
                    return words.get("tasks")
                if isinstance(value, RuntimeError) and "can't start new thread" in str(value):
                    return words.get("tasks")
                return None

            def explain(self, etype, value, tb, tb_offset=None):
                # IPython's own display first (the traceback; %debug and %pdb work as before).
                self.showtraceback((etype, value, tb), tb_offset=tb_offset)
                text = words_for(value)
                if text:
                    print(text, file=sys.stderr, flush=True)

            shell.set_custom_exc((MemoryError, BlockingIOError, RuntimeError), explain)

        """
}
