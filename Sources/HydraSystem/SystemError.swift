/// A failed system call or OS step, with the operation, the object and errno's text.
package struct SystemError: HydraError, Equatable {
    package let operation: String
    package let object: String
    package let code: Errno

    package init(_ operation: String, _ object: String, errno code: Errno = .current) {
        self.operation = operation
        self.object = object
        self.code = code
    }

    package var exitStatus: ExitStatus { .systemError }
    package var description: String {
        "\(operation) \(object): \(code)"
    }
}

/// A failure with a message only, for the steps that have no errno (a program's exit status).
package struct StepFailure: HydraError, Equatable {
    package let message: String
    package let exitStatus: ExitStatus
    package init(_ message: String, status: ExitStatus = .systemError) {
        self.message = message
        self.exitStatus = status
    }
    package var description: String { message }
}
