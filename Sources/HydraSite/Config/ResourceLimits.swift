import HydraSystem
/// How each user's notebook server is run: `[limits]` of hydra.toml.
package enum Supervisor: String, Sendable, Equatable, CaseIterable {
    /// A systemd user unit where systemd is PID 1, else a detached process.
    case auto
    /// Always a transient unit of the user's own systemd manager.
    case systemd
    /// A detached process (setsid) with setrlimit limits.
    case detached
}

/// The limits of one user's server with its kernels and terminals; nil: none.
package struct ResourceLimits: Sendable, Equatable, Encodable {
    package var memoryMaxBytes: UInt64?
    package var cpuQuotaPercent: Int?
    package var tasksMax: Int?

    package init(memoryMaxBytes: UInt64? = nil, cpuQuotaPercent: Int? = nil, tasksMax: Int? = nil) {
        self.memoryMaxBytes = memoryMaxBytes
        self.cpuQuotaPercent = cpuQuotaPercent
        self.tasksMax = tasksMax
    }

    enum CodingKeys: String, CodingKey {
        case memoryMaxBytes = "memory_max_bytes", cpuQuotaPercent = "cpu_quota_percent", tasksMax = "tasks_max"
    }

    /// "512M", "4G", "1048576": bytes, with systemd's base-1024 suffixes K, M, G, T.
    package static func bytes(_ text: String) -> UInt64? {
        let suffixes: [Character: UInt64] = ["K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40]
        var digits = Substring(text)
        var factor: UInt64 = 1
        if let last = text.last, let multiple = suffixes[last] {
            factor = multiple
            digits = digits.dropLast()
        }
        guard !digits.isEmpty, digits.allSatisfy(\.isASCII), let value = UInt64(digits), value > 0 else { return nil }
        let (product, overflow) = value.multipliedReportingOverflow(by: factor)
        return overflow ? nil : product
    }

    /// A memory size as people read it: "384 MiB" (whole MiB, as the limits are written).
    package static func mebibytes(_ bytes: UInt64) -> String { "\(bytes >> 20) MiB" }

    /// The least each of `all` allows, property by property: what a person who may run any of
    /// them needs at most (nil, no limit, where one of them has none). Of none: no limits.
    package static func loosest(_ all: [ResourceLimits]) -> ResourceLimits {
        func most<Value: Comparable>(_ values: [Value?]) -> Value? {
            values.contains(where: { $0 == nil }) ? nil : values.compactMap { $0 }.max()
        }
        return ResourceLimits(memoryMaxBytes: most(all.map(\.memoryMaxBytes)), cpuQuotaPercent: most(all.map(\.cpuQuotaPercent)),
                              tasksMax: most(all.map(\.tasksMax)))
    }

    /// "200%": percent of one CPU.
    package static func percent(_ text: String) -> Int? {
        guard text.hasSuffix("%"), let value = Int(text.dropLast()), (1...100_000).contains(value) else { return nil }
        return value
    }
}

/// `[limits]`: the supervisor, the site's limits, and per-user overrides.
package struct LimitSettings: Sendable, Equatable {
    package var supervisor: Supervisor
    package var defaults: ResourceLimits
    /// Each entry is complete (the site's limits with the user's overrides applied).
    package var perUser: [String: ResourceLimits]

    package func limits(for name: UserName) -> ResourceLimits { perUser[name.value] ?? defaults }
}

extension TableReader {
    mutating func memorySize(_ key: String, default fallback: UInt64?) throws(ConfigError) -> UInt64? {
        let text = try string(key, default: fallback.map { String($0) } ?? "")
        if text.isEmpty { return nil }
        guard let bytes = ResourceLimits.bytes(text) else {
            throw invalid(key, "'\(text)' is not a size such as 512M or 4G (\"\" for no limit)")
        }
        return bytes
    }

    mutating func cpuQuota(_ key: String, default fallback: Int?) throws(ConfigError) -> Int? {
        let text = try string(key, default: fallback.map { "\($0)%" } ?? "")
        if text.isEmpty { return nil }
        guard let percent = ResourceLimits.percent(text) else {
            throw invalid(key, "'\(text)' is not a percentage such as 100% or 200% (\"\" for no limit)")
        }
        return percent
    }

    mutating func resourceLimits(default fallback: ResourceLimits) throws(ConfigError) -> ResourceLimits {
        let tasks = try int("tasks_max", default: fallback.tasksMax ?? 0, in: 0...4_194_304)
        return ResourceLimits(memoryMaxBytes: try memorySize("memory_max", default: fallback.memoryMaxBytes),
                              cpuQuotaPercent: try cpuQuota("cpu_quota", default: fallback.cpuQuotaPercent),
                              tasksMax: tasks == 0 ? nil : tasks)
    }

    mutating func limitSettings() throws(ConfigError) -> LimitSettings {
        let setting = try string("supervisor", default: Supervisor.auto.rawValue)
        guard let supervisor = Supervisor(rawValue: setting) else {
            throw invalid("supervisor", "must be one of \(Supervisor.allCases.map { "\"\($0.rawValue)\"" }.joined(separator: ", "))")
        }
        let defaults = try resourceLimits(default: ResourceLimits(memoryMaxBytes: 4 << 30, cpuQuotaPercent: 200, tasksMax: 512))
        var perUser: [String: ResourceLimits] = [:]
        if var users = try subtable("users") {
            for name in users.keys {
                guard UserName.isWellFormed(name), var overrides = try users.subtable(name) else {
                    throw users.invalid(name, "must be a table [limits.users.NAME] for a valid user name")
                }
                perUser[name] = try overrides.resourceLimits(default: defaults)
                try overrides.finish()
            }
            try users.finish()
        }
        return LimitSettings(supervisor: supervisor, defaults: defaults, perUser: perUser)
    }
}
