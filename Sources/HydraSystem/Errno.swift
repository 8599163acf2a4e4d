#if canImport(Glibc)
import Glibc
#endif

/// An errno value with its text: what a failed system call left behind. The layers above
/// compare against these names and never see the C macros.
package struct Errno: Equatable, Hashable, Sendable, CustomStringConvertible {
    package let rawValue: Int32
    package init(_ rawValue: Int32) { self.rawValue = rawValue }

    /// The calling thread's errno, right after the failing call.
    package static var current: Errno { Errno(errno) }

    package static let notPermitted = Errno(EPERM)
    package static let noSuchFile = Errno(ENOENT)
    package static let ioError = Errno(EIO)
    package static let wouldBlock = Errno(EAGAIN)
    package static let invalidArgument = Errno(EINVAL)

    package var description: String { String(cString: strerror(rawValue)) }
}

/// Makes a system call again for as long as a signal interrupts it (-1 with EINTR): the one
/// place that rule lives.
package func retryingInterrupted<Result: FixedWidthInteger & SignedInteger>(_ call: () -> Result) -> Result {
    while true {
        let result = call()
        if result != -1 || errno != EINTR { return result }
    }
}
