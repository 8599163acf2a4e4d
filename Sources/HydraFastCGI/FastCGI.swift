import HydraSystem
import CFastCGI
import Foundation
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// The FastCGI responder loop: the only code that touches libfcgi. Worker threads each accept
/// and answer requests; when started as a plain CGI program (stdin is not a socket) it
/// answers the one request in the environment. SIGTERM lets in-flight requests finish, then
/// exits.
package enum FastCGI {
    /// A request: the CGI parameters and the body (at most `maximumBody` bytes).
    package struct Request: Sendable {
        package let parameters: [String: String]
        package let body: [UInt8]
        package init(parameters: [String: String], body: [UInt8]) {
            self.parameters = parameters
            self.body = body
        }
    }

    /// An answer: its CGI bytes (headers, blank line, body), and work to do after they are sent.
    package struct Answer: Sendable {
        package let bytes: [UInt8]
        package let afterwards: (@Sendable () -> Void)?
        package init(bytes: [UInt8], afterwards: (@Sendable () -> Void)? = nil) {
            self.bytes = bytes
            self.afterwards = afterwards
        }
    }

    package typealias Handler = @Sendable (Request) -> Answer

    /// True when started by a FastCGI server (mod_fcgid passes the listening socket as stdin).
    package static var isFastCGI: Bool { FCGX_IsCGI() == 0 }

    /// Answers the single request of a CGI invocation.
    package static func serveCGI(_ handler: Handler) {
        let environment = ProcessInfo.processInfo.environment
        let length = min(Int(environment["CONTENT_LENGTH"] ?? "0") ?? 0, maximumBody)
        let body = length > 0 ? [UInt8](FileHandle.standardInput.readData(ofLength: length)) : []
        let response = handler(Request(parameters: environment, body: body))
        StandardStreams.writeOutput(response.bytes)
        if let afterwards = response.afterwards {
            close(STDOUT_FILENO)  // the web server sees the end of the answer now
            afterwards()
        }
    }

    /// Serves FastCGI requests on `socketPath` (a listening socket it creates) or, when nil,
    /// on the socket the web server passed as stdin. Returns after SIGTERM/SIGINT.
    package static func serve(workers: Int, socketPath: String? = nil, handler: @escaping Handler) throws(SystemError) {
        guard FCGX_Init() == 0 else { throw SystemError("initialising", "libfcgi", errno: .ioError) }
        var listenFD: Int32 = 0
        if let socketPath {
            unlink(socketPath)
            listenFD = FCGX_OpenSocket(socketPath, 128)
            guard listenFD >= 0 else { throw SystemError("listening on", socketPath) }
        }
        // Signals are taken by the waiting main thread only.
        var signals = sigset_t()
        sigemptyset(&signals)
        for signal in [SIGTERM, SIGINT, SIGHUP, SIGUSR1] { sigaddset(&signals, signal) }
        pthread_sigmask(SIG_BLOCK, &signals, nil)
        signal(SIGPIPE, SIG_IGN)

        let state = WorkerState(handler: handler, listenFD: listenFD)
        for _ in 0..<max(1, workers) {
            let thread = Thread { acceptLoop(state) }
            thread.stackSize = 1 << 20
            thread.start()
        }
        var received: Int32 = 0
        repeat { sigwait(&signals, &received) } while received == SIGUSR1
        stopping.store(true, ordering: .relaxed)
        state.drain(timeoutSeconds: 10)
    }

    static let maximumBody = 1 << 16

    /// Set once the web server asked this process to exit (a restart, `apache2ctl graceful`):
    /// requests waiting for a long helper answer at once instead of being cut off.
    package static let stopping = Atomic<Bool>(false)
    package static var isStopping: Bool { stopping.load(ordering: .relaxed) }

    /// Requests in flight, so a shutdown waits for them.
    final class WorkerState: @unchecked Sendable {
        let handler: Handler
        let listenFD: Int32
        private let condition = NSCondition()
        private var active = 0
        private var stopping = false

        init(handler: @escaping Handler, listenFD: Int32) {
            self.handler = handler
            self.listenFD = listenFD
        }

        func begin() -> Bool {
            condition.lock(); defer { condition.unlock() }
            if stopping { return false }
            active += 1
            return true
        }

        func end() {
            condition.lock(); defer { condition.unlock() }
            active -= 1
            condition.broadcast()
        }

        func drain(timeoutSeconds: Double) {
            condition.lock(); defer { condition.unlock() }
            stopping = true
            let deadline = Date().addingTimeInterval(timeoutSeconds)
            while active > 0, condition.wait(until: deadline) {}
        }
    }

    private static func acceptLoop(_ state: WorkerState) {
        var request = FCGX_Request()
        guard FCGX_InitRequest(&request, state.listenFD, 0) == 0 else { return }
        while FCGX_Accept_r(&request) == 0 {
            guard state.begin() else { FCGX_Finish_r(&request); return }
            let response = state.handler(Request(parameters: parameters(of: request), body: body(of: &request)))
            response.bytes.withUnsafeBufferPointer { buffer in
                buffer.withMemoryRebound(to: CChar.self) { _ = FCGX_PutStr($0.baseAddress, Int32($0.count), request.out) }
            }
            FCGX_Finish_r(&request)
            if let afterwards = response.afterwards {
                // In its own thread, so this worker accepts the next request at once; counted
                // as in flight, so a shutdown waits for it too.
                Thread {
                    afterwards()
                    state.end()
                }.start()
            } else {
                state.end()
            }
        }
    }

    private static func parameters(of request: FCGX_Request) -> [String: String] {
        var result: [String: String] = [:]
        var cursor = request.envp
        while let entry = cursor?.pointee {
            let pair = String(cString: entry)
            if let equals = pair.firstIndex(of: "=") {
                result[String(pair[..<equals])] = String(pair[pair.index(after: equals)...])
            }
            cursor = cursor! + 1
        }
        return result
    }

    private static func body(of request: inout FCGX_Request) -> [UInt8] {
        var body: [UInt8] = []
        var buffer = [CChar](repeating: 0, count: 8192)
        while body.count < maximumBody {
            let count = FCGX_GetStr(&buffer, Int32(buffer.count), request.in)
            if count <= 0 { break }
            body += buffer[0..<Int(count)].map { UInt8(bitPattern: $0) }
        }
        return body
    }
}
