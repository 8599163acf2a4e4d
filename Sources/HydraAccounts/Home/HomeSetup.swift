import HydraSite
import HydraCourses
import HydraSystem

/// Everything in the home that hydra owns, made ready as the user: `~/.hydra/` (the Jupyter
/// configuration, the sync state), the link to the shared data set, the course folders.
package struct HomeSetup: Sendable {
    package let config: HydraConfig
    package let account: PasswdEntry

    package init(config: HydraConfig, account: PasswdEntry) {
        self.config = config
        self.account = account
    }

    package var hydraDir: String { "\(account.home)/.hydra" }
    package var jupyterConfigPath: String { "\(hydraDir)/jupyter_config.py" }

    /// The Jupyter configuration (its Python and the site's values beside it) and the data link;
    /// cheap when nothing changed.
    package func prepare() throws {
        let home = try DirectoryHandle.open(account.home)
        let hydra = try home.subdirectory(".hydra", createMode: 0o700)
        let settings = JupyterSettings(config: config)
        // The values first: a new jupyter_config.py may read a value the old JSON lacks.
        for (name, wanted) in [(JupyterSettings.valuesFileName, try settings.valuesFileContents),
                               ("jupyter_config.py", Array(JupyterSettings.fileContents.utf8))] {
            if try hydra.readEntry(name) != .file(wanted) {
                try hydra.writeAtomically(name, wanted, staging: hydra.subdirectory("staging", createMode: 0o700), mode: 0o600)
            }
        }
        if !config.sync.dataPath.isEmpty, try home.entryStatus(config.sync.dataLinkName) == nil {
            // Only where nothing of the user's is: an existing file or folder of that name stays.
            try home.makeSymbolicLink(config.sync.dataLinkName, to: config.sync.dataPath)
        }
    }

    /// Syncs every configured course from its mirror (or upstream when no mirror exists yet).
    package func syncCourses() -> [SyncReport] {
        config.courses.map { course in
            let source = Mirror(config: config, course: course).syncSource
            return sync(folder: course.folder, source: source)
        }
    }

    /// One folder from one source: a failure is reported, never thrown (the server starts anyway).
    package func sync(folder: String, source: TutorialSync.Source) -> SyncReport {
        let sync = TutorialSync(home: account.home, folder: folder, source: source, stateDir: "\(hydraDir)/sync",
                                restoreDeleted: config.sync.restoreDeleted, fetchTimeoutSeconds: Double(config.sync.fetchTimeoutSeconds))
        do {
            return try sync.run()
        } catch {
            var report = SyncReport(folder: folder, repo: source.url, branch: source.branch)
            report.error = "\(error)"
            return report
        }
    }
}
