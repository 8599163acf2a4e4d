import HydraSite
import HydraServers
import Foundation
import HydraSystem
import Logging
import NIOCore
import NIOPosix
import NIOSSL
import Synchronization
import Testing
@testable import HydraGate

/// The TLS between the web host and a Slurm job's server, both ends of it in this process: a
/// server showing a certificate made by `PinnedCertificate` (as a job's Jupyter does), and the
/// two clients that pin it: ipynb-launch's probe (`PinnedTLS`, libssl) and the gate's
/// `PinnedServer` (SwiftNIO's TLS). Another start's certificate must get nothing sent to it.
@Suite("Pinned TLS to a job's server", .serialized)
final class PinnedTLSTests {
    let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
    /// Every byte the server received, decrypted.
    let received = Received()

    final class Received: Sendable {
        private let bytes = Mutex<[UInt8]>([])
        func add(_ more: [UInt8]) { bytes.withLock { $0 += more } }
        var text: String { String(decoding: bytes.withLock { $0 }, as: UTF8.self) }
    }

    deinit { try? group.syncShutdownGracefully() }

    /// A TLS server on 127.0.0.1 with `certificate`, answering each request with a small page.
    func server(_ certificate: PinnedCertificate) throws -> Int {
        let context = try NIOSSLContext(configuration: .makeServerConfiguration(
            certificateChain: [.certificate(try NIOSSLCertificate(bytes: certificate.certificatePEM, format: .pem))],
            privateKey: .privateKey(try NIOSSLPrivateKey(bytes: certificate.keyPEM, format: .pem))))
        let channel = try ServerBootstrap(group: group)
            .childChannelInitializer { [received] channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandlers([NIOSSLServerHandler(context: context), Answering(received: received)])
                }
            }
            .bind(host: "127.0.0.1", port: 0).wait()
        return channel.localAddress?.port ?? 0
    }

    final class Answering: ChannelInboundHandler, Sendable {
        typealias InboundIn = ByteBuffer
        typealias OutboundOut = ByteBuffer
        let received: Received
        init(received: Received) { self.received = received }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            let bytes = Array(unwrapInboundIn(data).readableBytesView)
            received.add(bytes)
            let page = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok"
            context.writeAndFlush(wrapOutboundOut(context.channel.allocator.buffer(string: page))).assumeIsolated()
                .whenComplete { _ in context.close(promise: nil) }
        }
    }

    @Test func theProbeSendsTheTokenOnlyToTheServerWithItsStartsCertificate() throws {
        let mine = try PinnedCertificate.make(commonName: "hydra-alice")
        let other = try PinnedCertificate.make(commonName: "hydra-alice")
        #expect(mine.pin != other.pin && JobEndpoint.isPin(mine.pin))
        #expect(String(decoding: mine.keyPEM, as: UTF8.self).hasPrefix("-----BEGIN PRIVATE KEY-----"))
        let port = try server(mine)
        let request = Array("GET /user/alice/api/status HTTP/1.1\r\nAuthorization: token secret-token\r\n\r\n".utf8)

        func connection() throws -> Descriptor {
            try #require(StreamExchange.connectTCP(address: "127.0.0.1", port: port, timeoutSeconds: 5))
        }
        // Another start's pin (a listener that is not this start's server): nothing is sent.
        #expect(PinnedTLS.exchange(over: try connection(), pin: other.pin, request: request, timeoutSeconds: 5) == nil)
        #expect(received.text.isEmpty)

        let answer = try #require(PinnedTLS.exchange(over: try connection(), pin: mine.pin, request: request, timeoutSeconds: 5))
        #expect(String(decoding: answer, as: UTF8.self).hasSuffix("\r\n\r\nok"))
        #expect(received.text.contains("token secret-token"))
    }

    @Test func theGateHandsNothingToAServerWithAnotherCertificate() throws {
        let mine = try PinnedCertificate.make(commonName: "hydra-bob")
        let other = try PinnedCertificate.make(commonName: "hydra-bob")
        let port = try server(mine)
        let context = try PinnedServer.context()

        func connect(pin: String) throws -> EventLoopFuture<Channel> {
            let pinned = PinnedServer(pin: pin, context: context, eventLoop: group.next(), logger: Logger(label: "test"),
                                      person: try UserName("bob"), place: "127.0.0.1:\(port)")
            return ClientBootstrap(group: pinned.promise.futureResult.eventLoop)
                .channelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture { try channel.pipeline.syncOperations.addHandlers(try pinned.handlers()) }
                }
                .connect(host: "127.0.0.1", port: port)
                .flatMap { channel in pinned.handshake.map { channel } }
        }

        #expect(throws: (any Error).self) { try connect(pin: other.pin).wait() }
        let channel = try connect(pin: mine.pin).wait()
        try channel.writeAndFlush(channel.allocator.buffer(string: "GET / HTTP/1.1\r\n\r\n")).wait()
        try channel.closeFuture.wait()
        #expect(received.text == "GET / HTTP/1.1\r\n\r\n")
    }
}
