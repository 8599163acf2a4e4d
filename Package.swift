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
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/LebJe/TOMLKit", from: "0.6.0"),
        .package(url: "https://github.com/hummingbird-project/swift-mustache", from: "2.1.1"),
    ],
    targets: [
        // The C libraries, each wrapped once: only the matching folder of HydraKit imports it.
        .systemLibrary(name: "CFastCGI", pkgConfig: "fcgi", providers: [.apt(["libfcgi-dev"])]),
        .systemLibrary(name: "CLDAP", pkgConfig: "ldap", providers: [.apt(["libldap-dev"])]),
        .systemLibrary(name: "COpenSSL", pkgConfig: "openssl", providers: [.apt(["libssl-dev"])]),
        // glibc's _GNU_SOURCE calls (pipe2, posix_spawn's closefrom/chdir/setsid), for ProcessRunner.
        .target(name: "CSystem"),
        .target(
            name: "HydraKit",
            dependencies: [
                "CFastCGI", "CLDAP", "COpenSSL", "CSystem",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "TOMLKit", package: "TOMLKit"),
                .product(name: "Mustache", package: "swift-mustache"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),
        .executableTarget(name: "hydra-cgi", dependencies: ["HydraKit"]),
        .executableTarget(
            name: "addldapuser",
            dependencies: ["HydraKit", .product(name: "ArgumentParser", package: "swift-argument-parser")]
        ),
        .executableTarget(
            name: "ipynb-launch",
            dependencies: ["HydraKit", .product(name: "ArgumentParser", package: "swift-argument-parser")]
        ),
        .testTarget(name: "HydraKitTests", dependencies: ["HydraKit"]),
    ],
    swiftLanguageModes: [.v6]
)
