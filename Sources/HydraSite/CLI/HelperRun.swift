import HydraSystem
import FoundationEssentials
import Logging

/// What every helper does around its work: logging to stderr, one JSON object on stdout when
/// asked, errors as a message plus their documented exit status.
package enum HelperRun {
    /// swift-log to stderr: under the front, stderr ends up in Apache's error log.
    package static func bootstrapLogging(label: String) -> Logger {
        LoggingSystem.bootstrap { StreamLogHandler.standardError(label: $0) }
        return Logger(label: label)
    }

    /// Runs `work`, prints its report (JSON or text) or its error, and returns the exit status.
    package static func report<Report: Encodable>(
        json: Bool, logger: Logger, action: String, user: String,
        _ work: () throws -> (Report, ExitStatus, String)
    ) -> ExitStatus {
        let started = monotonicSeconds()
        do {
            let (report, status, summary) = try work()
            let millis = Int((monotonicSeconds() - started) * 1000)
            logger.info("\(action) \(summary)", metadata: ["user": "\(LogSafe.quote(user))", "ms": "\(millis)", "exit": "\(status.rawValue)"])
            if json { printJSON(report) } else { print(summary) }
            return status
        } catch let thrown {
            let error = (thrown as? any HydraError) ?? StepFailure("unexpected failure: \(thrown)", status: .internalError)
            let millis = Int((monotonicSeconds() - started) * 1000)
            logger.error("\(action) failed: \(error.description)", metadata: ["user": "\(LogSafe.quote(user))", "ms": "\(millis)", "exit": "\(error.exitStatus.rawValue)"])
            if json { printJSON(ErrorReport(user: user, error: error.description, exitStatus: error.exitStatus.rawValue)) }
            return error.exitStatus
        }
    }

    /// A root helper takes nothing from where its caller stood: libldap reads `./ldaprc` from
    /// the working directory, so it works from `/`. (sudo's env_reset already drops LDAPRC and
    /// LDAPCONF; /etc/ldap/ldap.conf, e.g. the site's TLS_CACERT, still applies.)
    package static func ignoreCallerContext() {
        try? FileSystem.changeDirectory("/")
    }

    package static func printJSON<Value: Encodable>(_ value: Value) {
        if let line = json(value) { StandardStreams.writeOutput(line) }
    }

    /// One line of JSON, exactly as a helper prints it.
    package static func json<Value: Encodable>(_ value: Value) -> [UInt8]? {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return (try? encoder.encode(value)).map { Array($0) + Array("\n".utf8) }
    }

    /// What a helper prints with --json when it fails; the front shows `error` to the admin.
    package struct ErrorReport: Codable, Equatable {
        package let user: String
        package let error: String
        package let exitStatus: Int32
        package var outcome = "error"

        package init(user: String, error: String, exitStatus: Int32) {
            (self.user, self.error, self.exitStatus) = (user, error, exitStatus)
        }

        enum CodingKeys: String, CodingKey { case user, error, outcome, exitStatus = "exit_status" }
    }
}
