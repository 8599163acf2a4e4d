import HydraSystem
import TOMLKit

/// Reads one TOML table into typed values. Every key the table holds must be read by the
/// caller, or `finish()` reports the first unread one as unknown: a misspelt key is an error,
/// never a silently ignored setting.
struct TableReader {
    let path: String
    let section: String
    let table: TOMLTable
    let locator: SourceLocator
    private var read: Set<String> = []

    init(path: String, section: String, table: TOMLTable, locator: SourceLocator) {
        self.path = path
        self.section = section
        self.table = table
        self.locator = locator
    }

    /// The table's keys, sorted (for tables keyed by name, such as [limits.users]).
    var keys: [String] { table.keys.sorted() }

    func qualified(_ key: String) -> String { section.isEmpty ? key : "\(section).\(key)" }
    func line(_ key: String) -> Int { locator.line(of: qualified(key)) }

    func invalid(_ key: String, _ reason: String) -> ConfigError {
        .invalidValue(path: path, line: line(key), key: qualified(key), reason: reason)
    }

    private mutating func value(_ key: String) -> TOMLValueConvertible? {
        read.insert(key)
        return table[key]
    }

    private func wrongType(_ key: String, _ expected: String, _ value: TOMLValueConvertible) -> ConfigError {
        .wrongType(path: path, line: line(key), key: qualified(key), expected: expected, found: describe(value.type))
    }

    mutating func string(_ key: String, default fallback: String? = nil) throws(ConfigError) -> String {
        guard let value = value(key) else {
            if let fallback { return fallback }
            throw .missingKey(path: path, key: qualified(key))
        }
        guard let string = value.string else { throw wrongType(key, "a string", value) }
        guard !string.utf8.contains(0) else { throw invalid(key, "must not contain a NUL byte") }
        return string
    }

    mutating func bool(_ key: String, default fallback: Bool) throws(ConfigError) -> Bool {
        guard let value = value(key) else { return fallback }
        guard value.type == .bool, let bool = value.bool else { throw wrongType(key, "true or false", value) }
        return bool
    }

    mutating func int(_ key: String, default fallback: Int, in range: ClosedRange<Int>) throws(ConfigError) -> Int {
        guard let value = value(key) else { return fallback }
        guard value.type == .int, let int = value.int else { throw wrongType(key, "an integer", value) }
        guard range.contains(int) else {
            throw invalid(key, "\(int) is out of range (\(range.lowerBound)...\(range.upperBound))")
        }
        return int
    }

    mutating func strings(_ key: String, default fallback: [String]) throws(ConfigError) -> [String] {
        guard let value = value(key) else { return fallback }
        guard let array = value.array else { throw wrongType(key, "an array of strings", value) }
        var result: [String] = []
        for element in array {
            guard let string = element.string else { throw wrongType(key, "an array of strings", element) }
            result.append(string)
        }
        return result
    }

    mutating func integers(_ key: String, default fallback: [Int]) throws(ConfigError) -> [Int] {
        guard let value = value(key) else { return fallback }
        guard let array = value.array else { throw wrongType(key, "an array of integers", value) }
        var result: [Int] = []
        for element in array {
            guard element.type == .int, let int = element.int else { throw wrongType(key, "an array of integers", element) }
            result.append(int)
        }
        return result
    }

    /// An absolute path without `..` components or NUL.
    mutating func absolutePath(_ key: String, default fallback: String? = nil) throws(ConfigError) -> String {
        let value = try string(key, default: fallback)
        guard value.hasPrefix("/") else { throw invalid(key, "must be an absolute path, not '\(value)'") }
        guard !value.split(separator: "/").contains("..") else { throw invalid(key, "must not contain '..'") }
        return value
    }

    mutating func subtable(_ key: String) throws(ConfigError) -> TableReader? {
        guard let value = value(key) else { return nil }
        guard let table = value.table else { throw wrongType(key, "a table ([\(qualified(key))])", value) }
        return TableReader(path: path, section: qualified(key), table: table, locator: locator)
    }

    mutating func tableArray(_ key: String) throws(ConfigError) -> [TableReader] {
        guard let value = value(key) else { return [] }
        guard let array = value.array else { throw wrongType(key, "an array of tables ([[\(qualified(key))]])", value) }
        var readers: [TableReader] = []
        for (index, element) in array.enumerated() {
            guard let table = element.table else { throw wrongType(key, "an array of tables ([[\(qualified(key))]])", element) }
            readers.append(TableReader(path: path, section: "\(qualified(key))[\(index)]", table: table, locator: locator))
        }
        return readers
    }

    /// Fails on the first key nobody read.
    func finish() throws(ConfigError) {
        for key in table.keys.sorted() where !read.contains(key) {
            throw .unknownKey(path: path, line: line(key), key: qualified(key))
        }
    }

    private func describe(_ type: TOMLType) -> String {
        switch type {
        case .table: "a table"
        case .array: "an array"
        case .string: "a string"
        case .int: "an integer"
        case .double: "a floating-point number"
        case .bool: "a boolean"
        case .date, .time, .dateTime: "a date or time"
        }
    }
}
