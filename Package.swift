// swift-tools-version:6.0
// hydra: every person who authenticates to an Apache site gets their own JupyterLab,
// in their own Unix account. See README.md for the architecture.
//
// The libraries are layers; each may use only the ones below it (scripts/test checks that no
// folder of a target depends on another in a cycle, and that only HydraSystem imports Glibc):
//   HydraVersion  the version, from debian/changelog (the VersionStamp plugin writes it)
//   HydraSystem   system calls, processes, files, sockets, secrets, the user database, LDAP
//                 (with the C modules); HydraFastCGI, the FastCGI loop, beside it
//   HydraSite     the site's configuration, names, and what every helper does around its work
//   HydraCourses  the course folders: git, the mirrors, the sync rule
//   HydraAccounts the directory (LDAP look-ups), accounts and their runtime folders, the home
//                 hydra prepares (Jupyter's configuration, the courses), supervision (systemd or
//                 detached, and the limits)
//   HydraServers  the notebook server's lifecycle (ServerLifecycle decides, the local and Slurm
//                 backends observe and act), Slurm, and the site's census and events
//   HydraPages    hydra's HTML pages (escaped templates), for the front and the gate
//   HydraFront    the FastCGI front: routing, the visit, the admin page
//   HydraGate     hydra-gate (the only user of SwiftNIO and of its TLS, for Slurm jobs' servers),
//                 and the site's metrics
import PackageDescription

let logging: Target.Dependency = .product(name: "Logging", package: "swift-log")
let argumentParser: Target.Dependency = .product(name: "ArgumentParser", package: "swift-argument-parser")

let package = Package(
    name: "hydra",
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
        .package(url: "https://github.com/apple/swift-nio-ssl", from: "2.37.6"),
        .package(url: "https://github.com/apple/swift-metrics", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.1"),
    ],
    targets: [
        // The C libraries, each wrapped once and imported by one layer only.
        .systemLibrary(name: "CFastCGI", pkgConfig: "fcgi", providers: [.apt(["libfcgi-dev"])]),
        .systemLibrary(name: "CLDAP", pkgConfig: "ldap", providers: [.apt(["libldap-dev"])]),
        .systemLibrary(name: "COpenSSL", pkgConfig: "openssl", providers: [.apt(["libssl-dev"])]),
        // glibc's _GNU_SOURCE calls (pipe2, posix_spawn's extras, O_PATH, SO_PEERCRED).
        .target(name: "CHydraSystem"),

        .plugin(name: "VersionStamp", capability: .buildTool()),
        // Python files of a target as Swift strings (HydraAccounts: the Jupyter configuration).
        .plugin(name: "EmbedPython", capability: .buildTool()),
        .target(name: "HydraVersion", plugins: ["VersionStamp"]),
        .target(name: "HydraSystem", dependencies: ["CHydraSystem", "COpenSSL", "CLDAP"]),
        // The FastCGI loop, apart so that only hydra-cgi links libfcgi.
        .target(name: "HydraFastCGI", dependencies: ["HydraSystem", "CFastCGI"]),
        .target(name: "HydraSite", dependencies: ["HydraSystem", logging, .product(name: "TOMLKit", package: "TOMLKit")]),
        .target(name: "HydraCourses", dependencies: ["HydraSite", "HydraSystem"]),
        .target(name: "HydraAccounts", dependencies: ["HydraCourses", "HydraSite", "HydraSystem"], plugins: ["EmbedPython"]),
        .target(name: "HydraServers", dependencies: ["HydraAccounts", "HydraCourses", "HydraSite", "HydraSystem"]),
        // hydra's HTML pages, for the front and the gate (which must not link libfcgi).
        .target(name: "HydraPages", dependencies: [.product(name: "Mustache", package: "swift-mustache")]),
        .target(name: "HydraFront", dependencies: ["HydraVersion", "HydraPages", "HydraServers", "HydraAccounts", "HydraCourses", "HydraSite",
                                                   "HydraSystem", "HydraFastCGI", logging]),
        .target(name: "HydraGate", dependencies: ["HydraVersion", "HydraPages", "HydraServers", "HydraAccounts", "HydraSite", "HydraSystem", logging,
                                                  .product(name: "NIOCore", package: "swift-nio"),
                                                  .product(name: "NIOPosix", package: "swift-nio"),
                                                  .product(name: "NIOSSL", package: "swift-nio-ssl"),
                                                  .product(name: "NIOTLS", package: "swift-nio"),
                                                  .product(name: "NIOHTTP1", package: "swift-nio"),
                                                  .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                                                  .product(name: "CoreMetrics", package: "swift-metrics"),
                                                  .product(name: "Prometheus", package: "swift-prometheus")]),

        .executableTarget(name: "hydra-cgi", dependencies: ["HydraVersion", "HydraFront", "HydraSite", "HydraSystem", argumentParser]),
        .executableTarget(name: "hydra-gate", dependencies: ["HydraVersion", "HydraGate", "HydraSite", "HydraSystem", argumentParser]),
        .executableTarget(name: "addldapuser", dependencies: ["HydraVersion", "HydraAccounts", "HydraSite", "HydraSystem", argumentParser]),
        .executableTarget(name: "ipynb-launch", dependencies: ["HydraVersion", "HydraServers", "HydraAccounts", "HydraCourses", "HydraSite",
                                                             "HydraSystem", argumentParser]),

        // Fakes of the helpers and the user database, for the front's decisions in Swift tests.
        .target(name: "HydraTesting", dependencies: ["HydraFront", "HydraServers", "HydraAccounts", "HydraSite", "HydraSystem"]),
        .testTarget(name: "HydraTests", dependencies: ["HydraFront", "HydraServers", "HydraAccounts", "HydraCourses", "HydraSite", "HydraSystem",
                                                      "HydraTesting", logging]),
        .testTarget(name: "HydraGateTests", dependencies: ["HydraGate", "HydraTesting", "HydraServers", "HydraAccounts", "HydraSite", "HydraSystem",
                                                          logging,
                                                          .product(name: "NIOPosix", package: "swift-nio"),
                                                          .product(name: "NIOEmbedded", package: "swift-nio"),
                                                          .product(name: "NIOHTTP1", package: "swift-nio"),
                                                          .product(name: "NIOSSL", package: "swift-nio-ssl")]),
    ],
    swiftLanguageModes: [.v6]
)
