package dashboard

import (
	"html/template"
	"strings"
)

// Title is the hover text of a person: the whole label when it was cut, and
// the object id when a UPN is shown.
func (p person) Title() string {
	var parts []string
	if p.Label.Cut() {
		parts = append(parts, p.Label.Full)
	}
	if p.ID != "" {
		parts = append(parts, "object id "+p.ID)
	}
	return strings.Join(parts, " · ")
}

// styleSheet is the page's only style, inline and allowed by the CSP nonce.
// Colours meet WCAG AA contrast on their backgrounds; state is never told by
// colour alone (every badge has its word).
const styleSheet = `
:root{--fg:#1b1f24;--muted:#57606a;--line:#d0d7de;--bg:#f6f8fa;--card:#fff;--accent:#0b5cad;
--ok-bg:#e6f4ea;--ok-fg:#0f5323;--busy-bg:#fff4d6;--busy-fg:#6b4400;--bad-bg:#fdecea;--bad-fg:#8a1c12;
--info-bg:#e7f0fb;--info-fg:#0b4a8b;--muted-bg:#eef1f4;--muted-fg:#424a53}
*{box-sizing:border-box}
html{-webkit-text-size-adjust:100%}
body{margin:0;background:var(--bg);color:var(--fg);font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif}
a{color:var(--accent)}
a:focus-visible,button:focus-visible,select:focus-visible,.scroll:focus-visible{outline:3px solid #f0a000;outline-offset:2px}
.skip{position:absolute;left:-9999px;top:0;background:#fff;padding:.5rem 1rem}
.skip:focus{left:1rem;top:1rem;z-index:10}
.top{background:#0d2238;color:#fff;padding:1rem 1.5rem;display:flex;flex-wrap:wrap;gap:1rem;align-items:center;justify-content:space-between}
.top h1{margin:0;font-size:1.35rem;font-weight:650;letter-spacing:.01em}
.top .sub{margin:.2rem 0 0;color:#c9d6e3;font-size:.85rem}
.filter{display:flex;gap:.5rem;align-items:center;flex-wrap:wrap}
.filter label{font-weight:600}
.filter select,.filter button{font:inherit;padding:.35rem .6rem;border-radius:6px;border:1px solid #8aa0b6}
.filter select{background:#fff;color:var(--fg);min-width:12rem;max-width:100%}
.filter button{background:#f0a000;border-color:#f0a000;color:#1b1f24;font-weight:650;cursor:pointer}
main{max-width:1440px;margin:0 auto;padding:1.25rem 1.5rem 3rem}
.cards{list-style:none;margin:0 0 1.5rem;padding:0;display:grid;grid-template-columns:repeat(auto-fit,minmax(150px,1fr));gap:.75rem}
.card a{display:block;height:100%;background:var(--card);border:1px solid var(--line);border-left:5px solid var(--muted-fg);border-radius:8px;padding:.7rem .9rem;text-decoration:none;color:var(--fg)}
.card.ok a{border-left-color:#1a7f37}.card.info a{border-left-color:#0b5cad}.card.bad a{border-left-color:#c0271a}.card.zero a{border-left-color:var(--line)}
.card .n{display:block;font-size:1.6rem;font-weight:700;line-height:1.1;font-variant-numeric:tabular-nums}
.card .l{display:block;color:var(--muted);font-size:.85rem}
.card.bad .n{color:var(--bad-fg)}
section{background:var(--card);border:1px solid var(--line);border-radius:8px;margin:0 0 1.25rem;padding:1rem 1.1rem}
section h2{margin:0 0 .15rem;font-size:1.1rem;display:flex;gap:.5rem;align-items:baseline}
section h2 .count{font-size:.8rem;font-weight:600;color:var(--muted-fg);background:var(--muted-bg);border-radius:999px;padding:.05rem .55rem}
.hint{margin:0 0 .6rem;color:var(--muted);font-size:.85rem}
.empty{margin:.4rem 0 0;color:var(--muted);font-style:italic}
.more{margin:.5rem 0 0;color:var(--busy-fg);font-size:.85rem}
.unreadable{margin:.4rem 0 .6rem;padding:.5rem .7rem;border-left:4px solid var(--bad-fg);overflow-wrap:anywhere}
.scroll{overflow-x:auto}
table{width:100%;border-collapse:collapse;font-size:.875rem}
caption{caption-side:top;text-align:left;color:var(--muted);font-size:.8rem;padding:0 0 .4rem}
th,td{text-align:left;vertical-align:top;padding:.45rem .6rem;border-bottom:1px solid var(--line);overflow-wrap:break-word}
.long,.just,.why{overflow-wrap:anywhere;word-break:break-word}
td.just{min-width:12rem}
td.prof{min-width:6.5rem}
th abbr{text-decoration:none}
th{background:var(--bg);font-weight:650;color:#32383f;white-space:nowrap;font-size:.8rem;text-transform:uppercase;letter-spacing:.03em}
tbody tr:nth-child(even){background:#fafbfc}
tbody tr:hover{background:#f1f6fc}
td.when{white-space:nowrap;font-variant-numeric:tabular-nums}
td.left{white-space:nowrap;font-variant-numeric:tabular-nums;font-weight:700}
td.left.overdue{color:var(--bad-fg)}
.who{font-weight:600}
.id{display:block;color:var(--muted);font-size:.75rem;font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace}
.just{color:#32383f}
.tag{display:inline-block;white-space:nowrap;margin-left:.3rem;font-size:.72rem;color:var(--info-fg);background:var(--info-bg);border-radius:4px;padding:0 .3rem}
.badge{display:inline-block;white-space:nowrap;font-size:.75rem;font-weight:650;border-radius:999px;padding:.1rem .55rem;border:1px solid transparent}
.badge.ok{background:var(--ok-bg);color:var(--ok-fg);border-color:#a7d8b5}
.badge.busy{background:var(--busy-bg);color:var(--busy-fg);border-color:#f0cf7a}
.badge.bad{background:var(--bad-bg);color:var(--bad-fg);border-color:#f1b4ad}
.badge.info{background:var(--info-bg);color:var(--info-fg);border-color:#a9c8ec}
.badge.muted{background:var(--muted-bg);color:var(--muted-fg);border-color:#d0d7de}
.badge.busy::before{content:"\25CF\00A0"}
.progress{font-variant-numeric:tabular-nums;font-weight:650}
footer{max-width:1440px;margin:0 auto;padding:0 1.5rem 2rem;color:var(--muted);font-size:.8rem}
.error{max-width:44rem;margin:3rem auto;background:var(--card);border:1px solid var(--line);border-left:6px solid #c0271a;border-radius:8px;padding:1.25rem 1.5rem}
.error h1{margin:0 0 .5rem;font-size:1.3rem}
.error p{overflow-wrap:anywhere}
@media (max-width:720px){.top{padding:.8rem 1rem}main{padding:1rem .75rem 2rem}section{padding:.8rem .7rem}.filter select{min-width:0;flex:1}}
@media print{.top{background:none;color:#000}.filter{display:none}body{background:#fff}}
`

const pageSource = `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="refresh" content="{{.Refresh}}">
<meta name="referrer" content="no-referrer">
<title>{{if .Profile}}{{.Profile}} · {{end}}jitaccess operators' dashboard</title>
<link rel="icon" href="data:,">
<style nonce="{{.Nonce}}">{{css}}</style>
</head>
<body>
<a class="skip" href="#main">Skip to content</a>
<header class="top">
<div>
<h1>Just-in-time access</h1>
<p class="sub">Operators' dashboard{{if .Profile}} · profile <strong>{{.Profile}}</strong>{{end}} · as of <time datetime="{{.Now.ISO}}">{{.Now.Show}} UTC</time> · refreshes every {{.Refresh}} s</p>
</div>
<form class="filter" method="get" role="search" aria-label="Filter by profile">
{{- if .Code}}<input type="hidden" name="code" value="{{.Code}}">{{end}}
<label for="profile">Profile</label>
<select id="profile" name="profile">
<option value=""{{if not .Profile}} selected{{end}}>All profiles</option>
{{- range .Profiles}}
<option value="{{.Name}}"{{if .Selected}} selected{{end}}>{{.Name}}</option>
{{- end}}
</select>
<button type="submit">Apply</button>
</form>
</header>
<main id="main">
<nav aria-label="Summary">
<ul class="cards">
{{- range .Counts}}
<li class="card {{.Tone}}"><a href="#{{.Anchor}}"><span class="n">{{.Value}}</span><span class="l">{{.Label}}</span></a></li>
{{- end}}
</ul>
</nav>

<section id="active" aria-labelledby="active-h">
<h2 id="active-h">Active grants <span class="count">{{len .Active.Rows}}</span></h2>
<p class="hint">Members of a target group through jitaccess or PIM now, soonest end first. <em>Activating</em> and <em>ending</em> mean the membership change is being carried out.</p>
{{- if .Active.Rows}}
<div class="scroll" role="region" aria-labelledby="active-h" tabindex="0">
<table>
<caption>Active grants with approvers, start, end and time left</caption>
<thead><tr><th scope="col">Requester</th><th scope="col">Profile</th><th scope="col">Approved by</th><th scope="col">Justification</th><th scope="col">Activated <abbr title="Coordinated Universal Time">UTC</abbr></th><th scope="col">Ends <abbr title="Coordinated Universal Time">UTC</abbr></th><th scope="col">Time left</th><th scope="col">State</th></tr></thead>
<tbody>
{{- range .Active.Rows}}
<tr>
<td>{{template "who" .Who}}{{template "id" .ID}}</td>
<td class="prof">{{template "t" .Profile}}{{if .Source}}<span class="tag">{{.Source}}</span>{{end}}</td>
<td>{{template "t" .Approvers}}</td>
<td class="just">{{template "t" .Justification}}{{if .Ticket.Short}}<span class="id">ticket {{template "t" .Ticket}}</span>{{end}}</td>
<td class="when">{{template "when" .Activated}}</td>
<td class="when">{{template "when" .Ends}}</td>
<td class="left{{if .Overdue}} overdue{{end}}">{{.Left}}</td>
<td>{{template "badge" .State}}</td>
</tr>
{{- end}}
</tbody>
</table>
</div>
{{- else}}
<p class="empty">No active grants.</p>
{{- end}}
{{- if .Active.More}}{{template "more"}}{{end}}
</section>

<section id="pending" aria-labelledby="pending-h">
<h2 id="pending-h">Pending approvals <span class="count">{{len .Pending.Rows}}</span></h2>
<p class="hint">Requests waiting for approvers, longest waiting first.</p>
{{- if .Pending.Rows}}
<div class="scroll" role="region" aria-labelledby="pending-h" tabindex="0">
<table>
<caption>Pending requests with their age and approvals so far</caption>
<thead><tr><th scope="col">Requester</th><th scope="col">Profile</th><th scope="col">Duration</th><th scope="col">Justification</th><th scope="col">Requested <abbr title="Coordinated Universal Time">UTC</abbr></th><th scope="col">Waiting</th><th scope="col">Approvals</th></tr></thead>
<tbody>
{{- range .Pending.Rows}}
<tr>
<td>{{template "who" .Who}}{{template "id" .ID}}</td>
<td class="prof">{{template "t" .Profile}}</td>
<td class="when">{{or .Duration "—"}}</td>
<td class="just">{{template "t" .Justification}}{{if .Ticket.Short}}<span class="id">ticket {{template "t" .Ticket}}</span>{{end}}</td>
<td class="when">{{template "when" .Requested}}</td>
<td class="left">{{or .Age "—"}}</td>
<td><span class="progress" aria-label="{{.Approvals}} of {{.Required}} approvals">{{.Approvals}} / {{.Required}}</span>{{if .Approvers.Short}}<span class="id">{{template "t" .Approvers}}</span>{{end}}</td>
</tr>
{{- end}}
</tbody>
</table>
</div>
{{- else}}
<p class="empty">Nothing waits for approval.</p>
{{- end}}
{{- if .Pending.More}}{{template "more"}}{{end}}
</section>

<section id="attention" aria-labelledby="attention-h">
<h2 id="attention-h">Needs attention <span class="count">{{.AttentionCount}}</span></h2>
<p class="hint">Failed requests of the last 7 days, and membership or session work unfinished for more than 5 minutes (the sweep keeps retrying it).</p>
{{- with .Unreadable}}{{if .N}}
<p class="unreadable" role="alert"><strong>{{.N}} stored {{.Noun}} could not be read</strong> (damaged, or written by a newer version of jitaccess), so {{if eq .N 1}}it is{{else}}they are{{end}} left out of this page and nothing acts on {{if eq .N 1}}it{{else}}them{{end}}; the log names the problem: {{range $i, $id := .IDs}}{{if $i}}, {{end}}<code>{{$id.Short}}</code>{{end}}{{if .More}} and {{.More}} more{{end}}.</p>
{{- end}}{{end}}
{{- if .Attention.Rows}}
<div class="scroll" role="region" aria-labelledby="attention-h" tabindex="0">
<table>
<caption>Requests that need an operator, newest first</caption>
<thead><tr><th scope="col">Requester</th><th scope="col">Profile</th><th scope="col">State</th><th scope="col">Problem</th><th scope="col">Since <abbr title="Coordinated Universal Time">UTC</abbr></th><th scope="col">For</th></tr></thead>
<tbody>
{{- range .Attention.Rows}}
<tr>
<td>{{template "who" .Who}}{{template "id" .ID}}</td>
<td class="prof">{{template "t" .Profile}}</td>
<td>{{template "badge" .State}}</td>
<td class="why">{{template "t" .Problem}}</td>
<td class="when">{{template "when" .Since}}</td>
<td class="left">{{.Age}}</td>
</tr>
{{- end}}
</tbody>
</table>
</div>
{{- else}}
{{- if not .Unreadable.N}}
<p class="empty">Nothing needs attention.</p>
{{- end}}
{{- end}}
{{- if .Attention.More}}{{template "more"}}{{end}}
</section>

<section id="endings" aria-labelledby="endings-h">
<h2 id="endings-h">Recent endings <span class="count">{{len .Endings.Rows}}</span></h2>
<p class="hint">Grants and requests that expired, were revoked, cancelled or timed out in the last 24 hours, newest first.{{if .Lingering}} <strong>{{.Lingering}} ended grant{{if ne .Lingering 1}}s{{end}} may still be used until the time in the last column</strong>: an access token issued before the end keeps its groups claim for its lifetime; a deleted role assignment may authorize until the RBAC caches expire (README).{{end}}</p>
{{- if .Endings.Rows}}
<div class="scroll" role="region" aria-labelledby="endings-h" tabindex="0">
<table>
<caption>Endings of the last 24 hours with who ended them, why, and the sign-in sessions</caption>
<thead><tr><th scope="col">Requester</th><th scope="col">Profile</th><th scope="col">Outcome</th><th scope="col">Ended <abbr title="Coordinated Universal Time">UTC</abbr></th><th scope="col">By</th><th scope="col">Why</th><th scope="col">Sessions</th><th scope="col">Access gone by</th></tr></thead>
<tbody>
{{- range .Endings.Rows}}
<tr>
<td>{{template "who" .Who}}{{template "id" .ID}}</td>
<td class="prof">{{template "t" .Profile}}</td>
<td>{{template "badge" .Outcome}}</td>
<td class="when">{{template "when" .Ended}}</td>
<td>{{template "t" .By}}</td>
<td class="why">{{template "t" .Why}}</td>
<td>{{.Sessions}}</td>
<td class="when">{{if .GoneBy.ISO}}{{if .Lingers}}access may linger until {{end}}{{template "when" .GoneBy}}{{else}}—{{end}}</td>
</tr>
{{- end}}
</tbody>
</table>
</div>
{{- else}}
<p class="empty">Nothing ended in the last 24 hours.</p>
{{- end}}
{{- if .Endings.More}}{{template "more"}}{{end}}
</section>

<section id="denied" aria-labelledby="denied-h">
<h2 id="denied-h">Denied and rejected <span class="count">{{len .Denied.Rows}}</span></h2>
<p class="hint">Denied requests, rejected requests and rejected events without a usable request id{{if .Profile}} (those have no profile and are listed with all profiles only){{end}}, last 24 hours, newest first.</p>
{{- if .Denied.Rows}}
<div class="scroll" role="region" aria-labelledby="denied-h" tabindex="0">
<table>
<caption>Denials and rejections of the last 24 hours with their reasons</caption>
<thead><tr><th scope="col">When <abbr title="Coordinated Universal Time">UTC</abbr></th><th scope="col">Outcome</th><th scope="col">Requester</th><th scope="col">Profile</th><th scope="col">Request</th><th scope="col">By</th><th scope="col">Reason</th></tr></thead>
<tbody>
{{- range .Denied.Rows}}
<tr>
<td class="when">{{template "when" .At}}</td>
<td>{{template "badge" .Kind}}</td>
<td><span class="who">{{template "t" .Who}}</span></td>
<td class="prof">{{template "t" .Profile}}</td>
<td><span class="id">{{template "t" .ID}}</span></td>
<td>{{template "t" .By}}</td>
<td class="why">{{template "t" .Reason}}</td>
</tr>
{{- end}}
</tbody>
</table>
</div>
{{- else}}
<p class="empty">Nothing was denied or rejected in the last 24 hours.</p>
{{- end}}
{{- if .Denied.More}}{{template "more"}}{{end}}
</section>

<section id="outofband" aria-labelledby="outofband-h">
<h2 id="outofband-h">Out-of-band findings <span class="count">{{len .Findings.Rows}}</span></h2>
<p class="hint">Members added to a target group outside jitaccess and PIM (from Entra audit events): still present, or removed in the last 7 days.</p>
{{- if .Findings.Rows}}
<div class="scroll" role="region" aria-labelledby="outofband-h" tabindex="0">
<table>
<caption>Out-of-band members, newest first</caption>
<thead><tr><th scope="col">Member</th><th scope="col">Profile</th><th scope="col">Group</th><th scope="col">Observed <abbr title="Coordinated Universal Time">UTC</abbr></th><th scope="col">State</th><th scope="col">Detail</th></tr></thead>
<tbody>
{{- range .Findings.Rows}}
<tr>
<td>{{template "who" .Member}}{{template "id" .ID}}</td>
<td class="prof">{{template "t" .Profile}}</td>
<td><span class="id">{{template "t" .Group}}</span></td>
<td class="when">{{template "when" .Observed}}</td>
<td>{{template "badge" .State}}</td>
<td class="why">{{template "t" .Detail}}</td>
</tr>
{{- end}}
</tbody>
</table>
</div>
{{- else}}
<p class="empty">No out-of-band findings.</p>
{{- end}}
{{- if .Findings.More}}{{template "more"}}{{end}}
</section>
</main>
<footer>Times are UTC. Each listing reads at most 200 requests; the read API (<code>/api/requests</code>) has them all.</footer>
</body>
</html>
{{- define "t"}}{{if .Cut}}<span class="long" title="{{.Full}}">{{.Short}}</span>{{else}}{{.Short}}{{end}}{{end}}
{{- define "who"}}<span class="who{{if .Label.Cut}} long{{end}}"{{with .Title}} title="{{.}}"{{end}}>{{.Label.Short}}</span>{{end}}
{{- define "id"}}<span class="id">{{template "t" .}}</span>{{end}}
{{- define "when"}}{{if .ISO}}<time datetime="{{.ISO}}">{{.Show}}</time>{{else}}—{{end}}{{end}}
{{- define "badge"}}<span class="badge {{.Class}}"{{with .Hint}} title="{{.}}"{{end}}>{{.Label}}</span>{{end}}
{{- define "more"}}<p class="more">A listing for this section had more than 200 requests; only the first 200 were considered, so rows may be missing here. The read API (<code>/api/requests</code>) lists them all.</p>{{end}}
`

const errorSource = `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
{{- if .Refresh}}
<meta http-equiv="refresh" content="{{.Refresh}}">
{{- end}}
<meta name="referrer" content="no-referrer">
<title>{{.Status}} {{.Title}} · jitaccess</title>
<link rel="icon" href="data:,">
<style nonce="{{.Nonce}}">{{css}}</style>
</head>
<body>
<main>
<div class="error" role="alert">
<h1>{{.Title}}</h1>
<p>{{.Message}}</p>
{{- if .Refresh}}
<p class="hint">This page tries again every {{.Refresh}} s.</p>
{{- end}}
{{- if .Home}}
<p><a href="{{.Home}}">Show the dashboard for all profiles</a></p>
{{- end}}
<p class="hint">HTTP {{.Status}}</p>
</div>
</main>
</body>
</html>
`

var funcs = template.FuncMap{
	// css returns the fixed style sheet; it is a constant of this package,
	// never data, so it is trusted as CSS.
	"css": func() template.CSS { return template.CSS(styleSheet) },
}

var (
	pageTmpl  = template.Must(template.New("page").Funcs(funcs).Parse(pageSource))
	errorTmpl = template.Must(template.New("error").Funcs(funcs).Parse(errorSource))
)
