/// Veil's release version, printed by `veil --version`.
public enum VeilVersion {
    public static let current = "0.1.0"
}
