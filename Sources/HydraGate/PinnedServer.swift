import HydraSite
import HydraSystem
import Logging
import NIOCore
import NIOSSL
import NIOTLS

/// TLS to a Slurm job's server, which shows the certificate ipynb-launch made for that start:
/// the gate accepts exactly that certificate (its pin, from the front's endpoint file) and no
/// CA, so nobody else on the cluster's network can read the requests or stand in for the server.
struct PinnedServer: Sendable {
    let pin: String
    let context: NIOSSLContext
    let logger: Logger
    let person: UserName
    let place: String
    /// Succeeds once the handshake is done with the pinned certificate; fails otherwise.
    let promise: EventLoopPromise<Void>
    var handshake: EventLoopFuture<Void> { promise.futureResult }

    init(pin: String, context: NIOSSLContext, eventLoop: EventLoop, logger: Logger, person: UserName, place: String) {
        (self.pin, self.context, self.logger, self.person, self.place) = (pin, context, logger, person, place)
        self.promise = eventLoop.makePromise(of: Void.self)
    }

    /// The client's configuration: TLS 1.2 or later; the pin below replaces every other check.
    static func context() throws -> NIOSSLContext {
        var configuration = TLSConfiguration.makeClientConfiguration()
        configuration.minimumTLSVersion = .tlsv12
        // Verification stays on (with .none the callback below would not run); no hostname:
        // the pin names the certificate itself.
        configuration.certificateVerification = .noHostnameVerification
        return try NIOSSLContext(configuration: configuration)
    }

    /// The TLS handler and the one that reports the handshake's end, for the server's channel.
    func handlers() throws -> [ChannelHandler] {
        let (pin, logger, person, place) = (pin, logger, person, place)
        let tls = try NIOSSLClientHandler(context: context, serverHostname: nil) { certificates, verdict in
            let shown = (try? certificates.first?.toDERBytes()).map { SHA256Digest.hex($0) }
            if let shown, Secret.matches(shown, pin) {
                verdict.succeed(.certificateVerified)
            } else {
                logger.warning("the server at \(place) did not show the certificate the start of \(person)'s server made: not connected",
                               metadata: ["user": "\(person)"])
                verdict.succeed(.failed)
            }
        }
        return [tls, HandshakeWatch(promise)]
    }
}

/// Completes the promise when the TLS handshake ends: done, failed, or the connection gone.
final class HandshakeWatch: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = NIOAny
    private let promise: EventLoopPromise<Void>
    private var settled = false

    init(_ promise: EventLoopPromise<Void>) {
        self.promise = promise
    }

    private func settle(_ error: Error?) {
        guard !settled else { return }
        settled = true
        if let error { promise.fail(error) } else { promise.succeed(()) }
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if case .handshakeCompleted? = event as? TLSUserEvent { settle(nil) }
        context.fireUserInboundEventTriggered(event)
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        settle(error)
        context.fireErrorCaught(error)
    }

    func channelInactive(context: ChannelHandlerContext) {
        settle(ChannelError.eof)
        context.fireChannelInactive()
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        settle(ChannelError.eof)
    }
}
