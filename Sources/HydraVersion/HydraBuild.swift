/// What build of hydra this is: every program's `--version`, the admin page, and the
/// `hydra_build_info` metric say it. The value is written at build time by the VersionStamp
/// plugin from debian/changelog.
public enum HydraBuild {
    public static let version = stampedVersion
}
