import Mustache

/// hydra's HTML pages. Mustache escapes every `{{value}}`, so nothing a user or the
/// directory supplies can become markup. The templates are compiled in (no files to install).
package struct Pages: Sendable {
    private let library: MustacheLibrary

    package init() {
        var library = MustacheLibrary()
        do {
            try library.register(Self.layout, named: "layout")
            for (name, text) in Self.templates { try library.register(text, named: name) }
        } catch {
            preconditionFailure("a built-in page template does not parse: \(error)")
        }
        self.library = library
    }

    /// Renders `name` inside the layout. `values` are escaped.
    package func render(_ name: String, title: String, values: [String: Any] = [:]) -> String {
        let content = library.render(values, withTemplate: name) ?? ""
        return library.render(["title": title, "content": content], withTemplate: "layout") ?? ""
    }

    /// No scripts, no styles from elsewhere, no framing.
    package static let contentSecurityPolicy = "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"

    static let layout = """
        <!doctype html>
        <html lang="en"><head><meta charset="utf-8">
        <meta name="viewport" content="width=device-width, initial-scale=1">
        <title>{{title}}</title>
        <style>body{font-family:system-ui,sans-serif;max-width:40rem;margin:4rem auto;padding:0 1rem;color:#222}
        h1{font-size:1.4rem}code{background:#f3f3f3;padding:0 .2em}.muted{color:#666}
        body:has(table){max-width:80rem}table{border-collapse:collapse;margin:.5rem 0 1.5rem}
        th,td{text-align:left;padding:.25rem .6rem;border-bottom:1px solid #ddd;vertical-align:top}
        .note{background:#eef7ee;padding:.5rem}.error{color:#a00}</style>
        </head><body>
        {{{content}}}
        </body></html>
        """

    static let templates: [String: String] = [
        "whoami": """
            <h1>Signed in as {{name}}</h1>
            <p>Apache passed <code>REMOTE_USER={{remoteUser}}</code>, which hydra accepts as the user <code>{{name}}</code>.</p>
            """,
        "autologin": """
            <h1>Opening your notebooks&hellip;</h1>
            <form id="login" method="post" action="{{action}}">
            <input type="hidden" name="password" value="{{token}}">
            <input type="hidden" name="_xsrf" value="{{xsrf}}">
            <noscript><p>JavaScript is off: <button type="submit">Open my notebooks</button></p></noscript>
            </form>
            <script nonce="{{nonce}}">document.getElementById("login").submit();</script>
            """,
        "starting": """
            <h1>Starting your notebook server&hellip;</h1>
            <p>{{reason}} This page reloads by itself in a moment.</p>
            <p class="muted"><a href="/">Reload now</a></p>
            """,
        "profile": """
            <h1>{{#switching}}Change your notebook server's profile{{/switching}}{{^switching}}Choose your notebook server{{/switching}}</h1>
            {{#switching}}<p>Your notebook server will be <strong>restarted</strong> with the profile you choose: save your open
            notebooks first (what is not saved is lost; your files stay as they are). Choosing the one it runs now
            changes nothing.</p>{{/switching}}
            {{^several}}<p>Your account may use one profile only.</p>{{/several}}
            <form method="post" action="/hydra/profile">
            {{#profiles}}<p><label><input type="radio" name="profile" value="{{name}}"{{#checked}} checked{{/checked}}>
            <strong>{{title}}</strong>{{#running}} <span class="muted">(your server's profile now)</span>{{/running}}</label>{{#description}}<br><span class="muted">{{description}}</span>{{/description}}</p>
            {{/profiles}}
            <input type="hidden" name="_xsrf" value="{{xsrf}}">
            <p><button type="submit">{{#switching}}Restart with this profile{{/switching}}{{^switching}}Start{{/switching}}</button></p>
            </form>
            {{#switching}}<p class="muted"><a href="/">Back to my notebooks without a change</a></p>{{/switching}}
            """,
        "logged-out": """
            <h1>You are logged out</h1>
            <p>Your notebooks are saved, and your server may keep running your code for a while.</p>
            <p><a href="/">Open my notebooks again</a></p>
            """,
        "forbidden": """
            <h1>Notebooks are not available for this account</h1>
            <p>The account {{name}} may not use this service. If you think it should, tell the site's administrators.</p>
            """,
        "home-full": """
            <h1>Your home folder is full</h1>
            <p>Your notebook server cannot start because the home folder of {{name}} has no space left.
            Delete or move some files (over ssh, or ask the site's administrators), then <a href="/">try again</a>.
            Nothing of yours was changed.</p>
            """,
        "busy": """
            <h1>Please try again in a moment</h1>
            <p>A service this site depends on is not answering right now. <a href="/">Try again</a></p>
            """,
        "bad-name": """
            <h1>This account name cannot be used</h1>
            <p>The name you signed in with ({{remoteUser}}) is not a valid account name on this site: {{reason}}.</p>
            <p class="muted">If you think this is wrong, tell the site's administrators.</p>
            """,
        "no-auth": """
            <h1>Sign-in is not configured</h1>
            <p>The web server did not say who you are, so hydra cannot open your notebooks.</p>
            <p class="muted">Administrators: the location serving hydra needs an authentication module (see apache/hydra.conf). Incident {{incident}}.</p>
            """,
        "unavailable": """
            <h1>hydra is not available right now</h1>
            <p>Please try again in a few minutes.</p>
            <p class="muted">Administrators: see Apache's error log, incident {{incident}}.</p>
            """,
        "no-room": """
            <h1>No room for another notebook server right now</h1>
            <p>This machine is running as many notebook servers as its memory allows. Yours has not been
            started; your files are safe. Please <a href="/">try again</a> in a few minutes.</p>
            <p class="muted">If this keeps happening, tell the site's administrators.</p>
            """,
        "too-many-requests": """
            <h1>Too many requests at once</h1>
            <p>Your notebook server already has {{limit}} {{what}} under way, as many as this site allows one person.
            Close some tabs, or wait a moment and <a href="{{retry}}">try again</a>.</p>
            """,
        "site-full": """
            <h1>The site is at its limit right now</h1>
            <p>So many notebooks are open that the site cannot take another connection at the moment.
            Please wait a minute and <a href="{{retry}}">try again</a>.</p>
            """,
        "server-timeout": """
            <h1>Your notebook server did not answer</h1>
            <p>It did not answer within {{seconds}} seconds. It may be busy; <a href="/">open your notebooks again</a>.</p>
            """,
        "server-not-running": """
            <h1>Your notebook server is not running</h1>
            <p><a href="/">Start it and open your notebooks</a></p>
            """,
        "admin": """
            <h1>Notebook servers on this site</h1>
            <p class="muted">Signed in as {{admin}}. {{supervision}}</p>
            {{#stopped}}<p class="note">The server of {{stopped}} was stopped. Their next visit starts a new one.</p>{{/stopped}}
            {{#slurmError}}<p class="error">{{slurmError}}</p>{{/slurmError}}
            {{#gateDown}}<p class="error">hydra-gate does not answer: last activity is unknown, and nobody can reach their server.</p>{{/gateDown}}
            <h2>Running servers: {{serverCount}}</h2>
            <table id="servers">
            <tr><th>Person</th>{{#showProfiles}}<th>Profile</th>{{/showProfiles}}<th>Since</th><th>Memory</th><th>CPU time</th><th>Kernels</th><th>Last activity</th><th>Open websockets</th><th>Runs as</th><th>Limits hit</th><th></th></tr>
            {{#servers}}<tr data-user="{{name}}"><td>{{name}}</td>{{#showProfiles}}<td class="profile">{{profile}}</td>{{/showProfiles}}<td>{{since}}</td><td>{{memory}}</td><td>{{cpu}}</td><td>{{kernels}}</td>
            <td>{{lastActivity}}</td><td>{{websockets}}</td><td>{{runsAs}}</td><td>{{limits}}</td>
            <td><form method="post" action="/hydra/admin/stop"><input type="hidden" name="user" value="{{name}}">
            <input type="hidden" name="_xsrf" value="{{xsrf}}"><button type="submit" name="stop" value="{{name}}">Stop</button></form></td></tr>
            {{/servers}}
            {{^servers}}<tr><td colspan="10" class="muted">None running.</td></tr>{{/servers}}
            </table>
            <h2>Course mirrors</h2>
            <table id="mirrors">
            <tr><th>Folder</th><th>Repository</th><th>Branch</th><th>Last fetch</th><th>Last error</th></tr>
            {{#mirrors}}<tr><td>{{folder}}</td><td><code>{{repo}}</code></td><td>{{branch}}</td><td>{{lastFetch}}</td><td class="error">{{lastError}}</td></tr>
            {{/mirrors}}
            </table>
            <h2>Recent incidents</h2>
            <table id="incidents">
            <tr><th>Incident</th><th>When</th><th>Person</th><th>What happened</th></tr>
            {{#incidents}}<tr><td><code>{{id}}</code></td><td>{{time}}</td><td>{{user}}</td><td>{{detail}}</td></tr>
            {{/incidents}}
            {{^incidents}}<tr><td colspan="4" class="muted">None since the machine started.</td></tr>{{/incidents}}
            </table>
            <p class="muted">Metrics for Prometheus: <a href="/hydra/metrics">/hydra/metrics</a>. The full story of an incident is in Apache's error log, under its id.</p>
            <p class="muted" id="version">hydra {{version}}</p>
            """,
        "limit-hit": """
            <h1>Your notebook server hit a limit</h1>
            <p>{{words}}</p>
            <p>Your files are as you last saved them, and your notebook server is still running.</p>
            <p><a href="/">Continue to your notebooks</a></p>
            """,
        "not-admin": """
            <h1>For administrators only</h1>
            <p>The account {{name}} is not one of this site's hydra administrators.</p>
            <p><a href="/">Go to your notebooks</a></p>
            """,
        "stale-form": """
            <h1>This form has expired</h1>
            <p>Nothing was changed. <a href="{{page}}">Open the page again</a> and repeat the action there.</p>
            """,
        "not-found": """
            <h1>Not found</h1>
            <p><a href="/">Go to your notebooks</a></p>
            """,
    ]
}
