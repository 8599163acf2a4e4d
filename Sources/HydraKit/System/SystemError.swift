#if canImport(Glibc)
import Glibc
#endif

/// A failed system call or OS step, with the operation, the object and errno's text.
public struct SystemError: HydraError, Equatable {
    public let operation: String
    public let object: String
    public let code: Int32

    public init(_ operation: String, _ object: String, errno code: Int32 = errno) {
        self.operation = operation
        self.object = object
        self.code = code
    }

    public var exitStatus: ExitStatus { .systemError }
    public var description: String {
        "\(operation) \(object): \(String(cString: strerror(code)))"
    }
}

/// A failure with a message only, for the steps that have no errno (a program's exit status).
public struct StepFailure: HydraError, Equatable {
    public let message: String
    public let exitStatus: ExitStatus
    public init(_ message: String, status: ExitStatus = .systemError) {
        self.message = message
        self.exitStatus = status
    }
    public var description: String { message }
}
