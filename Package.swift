// swift-tools-version:6.0
// hydra: every person who authenticates to an Apache site gets their own JupyterLab,
// in their own Unix account. See README.md for the architecture.
import PackageDescription

let package = Package(
    name: "hydra",
    platforms: [.macOS(.v13)],
    products: [
        .executable(name: "hydra-cgi", targets: ["hydra-cgi"]),
        .executable(name: "addldapuser", targets: ["addldapuser"]),
        .executable(name: "ipynb-launch", targets: ["ipynb-launch"]),
        .executable(name: "hydra-gate", targets: ["hydra-gate"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/LebJe/TOMLKit", from: "0.6.0"),
        .package(url: "https://github.com/hummingbird-project/swift-mustache", from: "2.1.1"),
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.2"),
    ],
    targets: [
        // The C libraries, each wrapped once: only the matching folder of HydraKit imports it.
        .systemLibrary(name: "CFastCGI", pkgConfig: "fcgi", providers: [.apt(["libfcgi-dev"])]),
        .systemLibrary(name: "CLDAP", pkgConfig: "ldap", providers: [.apt(["libldap-dev"])]),
        .systemLibrary(name: "COpenSSL", pkgConfig: "openssl", providers: [.apt(["libssl-dev"])]),
        // glibc's _GNU_SOURCE calls (pipe2, posix_spawn's closefrom/chdir/setsid), for ProcessRunner.
        .target(name: "CHydraSystem"),
        .target(
            name: "HydraKit",
            dependencies: [
                "CFastCGI", "CLDAP", "COpenSSL", "CHydraSystem",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "TOMLKit", package: "TOMLKit"),
                .product(name: "Mustache", package: "swift-mustache"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),
        // hydra-gate: between Apache and the notebook servers (per-person limits, timeouts, the
        // one safe connect). Only it links SwiftNIO; the helpers stay small.
        .target(
            name: "HydraGate",
            dependencies: [
                "HydraKit",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .executableTarget(name: "hydra-cgi", dependencies: ["HydraKit"]),
        .executableTarget(
            name: "hydra-gate",
            dependencies: ["HydraGate", "HydraKit", .product(name: "ArgumentParser", package: "swift-argument-parser")]
        ),
        .executableTarget(
            name: "addldapuser",
            dependencies: ["HydraKit", .product(name: "ArgumentParser", package: "swift-argument-parser")]
        ),
        .executableTarget(
            name: "ipynb-launch",
            dependencies: ["HydraKit", .product(name: "ArgumentParser", package: "swift-argument-parser")]
        ),
        // Fakes of the helpers and the user database, for the front's decisions in Swift tests.
        .target(name: "HydraTesting", dependencies: ["HydraKit"]),
        .testTarget(name: "HydraKitTests", dependencies: ["HydraKit", "HydraTesting", .product(name: "Logging", package: "swift-log")]),
        .testTarget(
            name: "HydraGateTests",
            dependencies: ["HydraGate", "HydraKit", .product(name: "NIOPosix", package: "swift-nio"), .product(name: "Logging", package: "swift-log")]
        ),
    ],
    swiftLanguageModes: [.v6]
)
