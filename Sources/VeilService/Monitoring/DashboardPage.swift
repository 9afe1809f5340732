import Foundation

/// The dashboard (`Specs/wire.md` §9.2): one self-contained page — styles, script and SVG
/// charts inline, nothing fetched from elsewhere — compiled into the binary. Served live by
/// the coordinator, or written with a snapshot inside by `veil report`.
public enum DashboardPage {
    /// The page as the coordinator serves it: it reads its token from the URL's fragment and
    /// the snapshots from `/api/events`.
    public static var live: [UInt8] { PackageResources.dashboard_html }

    static let snapshotSlot = #"<script id="veil-snapshot" type="application/json"></script>"#

    /// The page with `snapshot` inside (a report: it renders once and fetches nothing). Every
    /// `<` is written `\u003c` — in JSON it can only occur inside a string, where that escape
    /// means the same — so that no string in the data can close the script element or open a
    /// comment (`<!--<script>` would change how the HTML parser ends the element).
    public static func report(embedding snapshot: Data) throws -> [UInt8] {
        let page = String(decoding: live, as: UTF8.self)
        guard let slot = page.range(of: snapshotSlot) else {
            throw ConfigurationError("the dashboard page has no snapshot slot")
        }
        let json = String(decoding: snapshot, as: UTF8.self).replacingOccurrences(of: "<", with: #"\u003c"#)
        let filled = #"<script id="veil-snapshot" type="application/json">"# + json + "</script>"
        return Array(page.replacingCharacters(in: slot, with: filled).utf8)
    }
}
