import HydraSystem

/// `[[profiles]]`: what a person's server may run on. Each profile names its backend, its
/// Jupyter environment, its limits (local) or its job (Slurm), and the groups whose members may
/// choose it. Without `[[profiles]]`, `[server]`, `[limits]` and `[slurm]` make one profile,
/// `default`, for everyone: a site that has none works as before.
package struct Profile: Sendable, Equatable {
    /// `[a-z0-9-]`, at most 32: in URLs, forms, metrics' labels, the record and ipynb-launch's argument.
    package var name: String
    package var title: String
    package var description: String
    package var backend: HydraConfig.Server.Backend
    package var pythonEnv: String
    /// Local servers: the server's limits (with the site's `[limits.users.NAME]` only in the
    /// implicit profile).
    package var limits: ResourceLimits
    /// Slurm jobs: the site's `[slurm]` with this profile's own values over it.
    package var slurm: SlurmSettings?
    /// Unix (or LDAP, through NSS) groups whose members may choose it; empty: everyone.
    package var groups: [String]
    package var isDefault: Bool

    /// The name of the profile `[server]`, `[limits]` and `[slurm]` make without `[[profiles]]`.
    package static let implicitName = "default"

    package static func isValidName(_ name: String) -> Bool {
        (1...32).contains(name.utf8.count) && name.utf8.allSatisfy { (97...122).contains($0) || (48...57).contains($0) || $0 == 45 }
            && !name.hasPrefix("-")
    }

    /// Whether a member of `memberOf` may choose it.
    package func allows(memberOf groupNames: [String]) -> Bool {
        groups.isEmpty || groups.contains(where: groupNames.contains)
    }
}

extension HydraConfig {
    /// The configuration a server of `profile` runs with: its backend, environment, limits and
    /// job in place of the site's. Everything downstream reads only these.
    package func applying(_ profile: Profile) -> HydraConfig {
        guard profile.name != Profile.implicitName || hasProfiles else { return self }
        var config = self
        config.server.backend = profile.backend
        config.server.pythonEnv = profile.pythonEnv
        config.limits.defaults = profile.limits
        config.limits.perUser = [:]
        config.slurm = profile.slurm ?? slurm
        return config
    }

    /// The profiles a member of `groupNames` may choose, in the file's order.
    package func profiles(forMemberOf groupNames: [String]) -> [Profile] {
        profiles.filter { $0.allows(memberOf: groupNames) }
    }

    /// The most a member of `groupNames` may run on this machine, all their local servers'
    /// profiles together: the ceiling root puts on their whole `user-UID.slice`, so that no unit
    /// they start themselves gets more. No limits when their profiles are all Slurm jobs.
    package func ceiling(for name: UserName, memberOf groupNames: [String]) -> ResourceLimits {
        guard hasProfiles else { return server.backend == .local ? limits.limits(for: name) : ResourceLimits() }
        return .loosest(profiles(forMemberOf: groupNames).filter { $0.backend == .local }.map(\.limits))
    }

    /// Of `allowed`, the one to use when nothing is chosen: the default, else the first.
    package static func defaultProfile(of allowed: [Profile]) -> Profile? {
        allowed.first(where: \.isDefault) ?? allowed.first
    }
}

extension TableReader {
    /// One `[[profiles]]` entry; the site's `[server]`, `[limits]` and `[slurm]` fill in what it leaves out.
    mutating func profile(server: HydraConfig.Server, limits: LimitSettings, slurm: SlurmSettings?) throws(ConfigError) -> Profile {
        let name = try string("name")
        guard Profile.isValidName(name) else {
            throw invalid("name", "'\(name)' must be 1 to 32 of a-z, 0-9 and '-' (it appears in URLs and metrics)")
        }
        let backendName = try string("backend", default: server.backend.rawValue)
        guard let backend = HydraConfig.Server.Backend(rawValue: backendName) else {
            throw invalid("backend", "'\(backendName)' is not one of \(HydraConfig.Server.Backend.allCases.map { "\"\($0.rawValue)\"" }.joined(separator: ", "))")
        }
        var profile = Profile(name: name, title: try string("title", default: name), description: try string("description", default: ""),
                              backend: backend, pythonEnv: try absolutePath("python_env", default: server.pythonEnv),
                              limits: limits.defaults, slurm: nil, groups: try strings("groups", default: []),
                              isDefault: try bool("default", default: false))
        if var table = try subtable("limits") {
            profile.limits = try table.resourceLimits(default: limits.defaults)
            try table.finish()
        }
        if var table = try subtable("slurm") {
            guard let slurm else { throw invalid("slurm", "a profile's slurm table refines the site's [slurm], which is missing") }
            // hydra-gate checks every job's port against the site's range, with the site's Slurm commands.
            for key in ["port_range", "bin_dir"] where table.keys.contains(key) {
                throw table.invalid(key, "is the site's alone: set it in [slurm]")
            }
            profile.slurm = try table.slurmSettings(over: slurm)
            try table.finish()
        }
        if backend == .slurm, slurm == nil {
            throw invalid("backend", "\"slurm\" needs the site's [slurm] table (bin_dir, port_range ...)")
        }
        if let bad = profile.groups.first(where: { !UserName.isWellFormed($0) }) {
            throw invalid("groups", "'\(bad)' is not a valid group name")
        }
        try finish()
        return profile
    }
}
