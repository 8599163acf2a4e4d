import Foundation
import PackagePlugin

/// Writes hydra's version into the HydraVersion target at build time: the top entry of
/// debian/changelog (the one place a release names its version), or HYDRA_PACKAGE_VERSION when
/// set (scripts/package: a test build with a higher version). A changed changelog or a changed
/// override rebuilds only what imports HydraVersion.
@main struct VersionStamp: BuildToolPlugin {
    func createBuildCommands(context: PluginContext, target: Target) throws -> [Command] {
        let changelog = context.package.directoryURL.appending(path: "debian/changelog")
        let output = context.pluginWorkDirectoryURL.appending(path: "StampedVersion.swift")
        let override = ProcessInfo.processInfo.environment["HYDRA_PACKAGE_VERSION"] ?? ""
        // Debian's version characters only, so that nothing else can reach the Swift source.
        let script = #"""
            version=${3:-$(sed -n '1s/^[a-z0-9.+-]* (\([^)]*\)).*$/\1/p' "$1")}
            case $version in '' | *[!A-Za-z0-9.+~:-]*) echo "VersionStamp: no valid version in $1 or HYDRA_PACKAGE_VERSION: '$version'" >&2; exit 1 ;; esac
            printf 'let stampedVersion = "%s"\n' "$version" >"$2"
            """#
        return [.buildCommand(displayName: "hydra's version from debian/changelog", executable: URL(filePath: "/bin/sh"),
                              arguments: ["-c", script, "version-stamp", changelog.path, output.path, override],
                              inputFiles: [changelog], outputFiles: [output])]
    }
}
