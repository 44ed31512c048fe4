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

// Empty reports whether a field has no value (it shows "—").
func (f field) Empty() bool {
	return f.Text == "" && f.When.ISO == "" && f.Badge == nil && f.Sessions == nil
}

// timeScript is the pages' only script, allowed by its hash in the CSP
// (scriptHash): it rewrites every <time datetime> in the viewer's time zone
// ("23 Nov 2026 11:04 CET"; data-s: to the second; no-break spaces but
// between the date and the clock, where a narrow column may wrap) and says
// so in #tz. The title of each time keeps UTC; without script the text is
// UTC.
const timeScript = `(function(){
var zone;
try { zone = Intl.DateTimeFormat().resolvedOptions().timeZone; } catch (e) { return; }
function fmt(secs) {
  var o = {day: "numeric", month: "short", year: "numeric", hour: "2-digit", minute: "2-digit", hourCycle: "h23", timeZoneName: "short"};
  if (secs) { o.second = "2-digit"; }
  return new Intl.DateTimeFormat("en-GB", o);
}
var f = [fmt(false), fmt(true)], nb = "\u00a0";
var els = document.querySelectorAll("time[datetime]");
for (var i = 0; i < els.length; i++) {
  var el = els[i], d = new Date(el.getAttribute("datetime"));
  if (isNaN(d.getTime())) { continue; }
  var p = {}, parts = f[el.hasAttribute("data-s") ? 1 : 0].formatToParts(d);
  for (var j = 0; j < parts.length; j++) { p[parts[j].type] = parts[j].value; }
  el.textContent = p.day + nb + p.month + nb + p.year + " " + p.hour + ":" + p.minute + (p.second ? ":" + p.second : "") + nb + p.timeZoneName;
}
var tz = document.getElementById("tz");
if (tz && zone) { tz.textContent = "Times are in your time zone, " + zone + "; hover over a time for UTC."; }
})();`

// styleSheet is the pages' only style, inline and allowed by the CSP nonce.
// Colours meet WCAG AA contrast on their backgrounds; state is never told by
// colour alone (every badge has its word).
const styleSheet = `
:root{--fg:#1b1f24;--muted:#57606a;--line:#d0d7de;--bg:#f6f8fa;--card:#fff;--accent:#0b5cad;
--ok-bg:#e6f4ea;--ok-fg:#0f5323;--busy-bg:#fff4d6;--busy-fg:#6b4400;--bad-bg:#fdecea;--bad-fg:#8a1c12;
--info-bg:#e7f0fb;--info-fg:#0b4a8b;--muted-bg:#eef1f4;--muted-fg:#424a53;--step-bg:#f3effc;--step-fg:#4b2a8c}
*{box-sizing:border-box}
html{-webkit-text-size-adjust:100%}
body{margin:0;background:var(--bg);color:var(--fg);font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif}
a{color:var(--accent)}
a:focus-visible,button:focus-visible,select:focus-visible,input:focus-visible,.scroll:focus-visible{outline:3px solid #f0a000;outline-offset:2px}
.skip{position:absolute;left:-9999px;top:0;background:#fff;padding:.5rem 1rem}
.skip:focus{left:1rem;top:1rem;z-index:10}
.top{background:#0d2238;color:#fff;padding:1rem 1.5rem;display:flex;flex-wrap:wrap;gap:.75rem 1.5rem;align-items:center;justify-content:space-between}
.top h1{margin:0;font-size:1.35rem;font-weight:650;letter-spacing:.01em}
.top h1 a{color:#fff;text-decoration:none}
.top .sub{margin:.2rem 0 0;color:#c9d6e3;font-size:.85rem}
.search{display:flex;gap:.5rem;align-items:center;flex:0 1 34rem;min-width:0}
.search label{font-weight:600}
.search input{flex:1;min-width:0;font:inherit;padding:.4rem .6rem;border-radius:6px;border:1px solid #8aa0b6;background:#fff;color:var(--fg)}
button{font:inherit;padding:.4rem .8rem;border-radius:6px;background:#f0a000;border:1px solid #f0a000;color:#1b1f24;font-weight:650;cursor:pointer}
.filter{display:flex;flex-wrap:wrap;gap:.6rem 1.25rem;align-items:flex-end;background:var(--card);border:1px solid var(--line);border-radius:8px;padding:.75rem 1rem;margin:0 0 1rem}
.filter .fld{display:flex;flex-direction:column;gap:.2rem}
.filter label{font-weight:600;font-size:.8rem;color:#32383f}
.filter select,.filter input{font:inherit;padding:.35rem .5rem;border-radius:6px;border:1px solid #8c959f;background:#fff;color:var(--fg)}
.filter select{min-width:12rem;max-width:100%}
.filter .range{display:flex;gap:.5rem;align-items:flex-end;border:0;margin:0;padding:0}
.filter .range legend{font-weight:600;font-size:.8rem;color:#32383f;padding:0;margin-bottom:.2rem}
.filter .acts{display:flex;gap:.75rem;align-items:center}
main{max-width:1440px;margin:0 auto;padding:1.25rem 1.5rem 3rem}
.cards{list-style:none;margin:0 0 1.5rem;padding:0;display:grid;grid-template-columns:repeat(auto-fit,minmax(150px,1fr));gap:.75rem}
.card a{display:block;height:100%;background:var(--card);border:1px solid var(--line);border-left:5px solid var(--muted-fg);border-radius:8px;padding:.7rem .9rem;text-decoration:none;color:var(--fg)}
.card.ok a{border-left-color:#1a7f37}.card.info a{border-left-color:#0b5cad}.card.bad a{border-left-color:#c0271a}.card.zero a{border-left-color:var(--line)}
.card .n{display:block;font-size:1.6rem;font-weight:700;line-height:1.1;font-variant-numeric:tabular-nums}
.card .l{display:block;color:var(--muted);font-size:.85rem}
.card.bad .n{color:var(--bad-fg)}
section{background:var(--card);border:1px solid var(--line);border-radius:8px;margin:0 0 1.25rem;padding:1rem 1.1rem;min-width:0}
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
.long,.just,.why,.free{overflow-wrap:anywhere;word-break:break-word}
td.just,td.why{min-width:12rem}
td.prof{min-width:6.5rem}
th{background:var(--bg);font-weight:650;color:#32383f;white-space:nowrap;font-size:.8rem;text-transform:uppercase;letter-spacing:.03em}
tbody tr:nth-child(even){background:#fafbfc}
tbody tr:hover{background:#f1f6fc}
td.when,.when{font-variant-numeric:tabular-nums}
td.when{min-width:6.5rem}
td.left{white-space:nowrap;font-variant-numeric:tabular-nums;font-weight:700}
td.left.overdue{color:var(--bad-fg)}
.who{font-weight:600}
.id{display:block;color:var(--muted);font-size:.75rem;font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;overflow-wrap:anywhere}
a.id{color:var(--accent)}
.cause{display:block;color:var(--muted);font-size:.8rem;overflow-wrap:anywhere}
.just{color:#32383f}
.tag{display:inline-block;white-space:nowrap;margin-left:.3rem;font-size:.72rem;color:var(--info-fg);background:var(--info-bg);border-radius:4px;padding:0 .3rem}
.badge{display:inline-block;white-space:nowrap;font-size:.75rem;font-weight:650;border-radius:999px;padding:.1rem .55rem;border:1px solid transparent}
.badge.ok{background:var(--ok-bg);color:var(--ok-fg);border-color:#a7d8b5}
.badge.busy{background:var(--busy-bg);color:var(--busy-fg);border-color:#f0cf7a}
.badge.bad{background:var(--bad-bg);color:var(--bad-fg);border-color:#f1b4ad}
.badge.info{background:var(--info-bg);color:var(--info-fg);border-color:#a9c8ec}
.badge.muted,.badge.note{background:var(--muted-bg);color:var(--muted-fg);border-color:#d0d7de}
.badge.step{background:var(--step-bg);color:var(--step-fg);border-color:#c9b8ef}
.badge.busy::before{content:"\25CF\00A0"}
.progress{font-variant-numeric:tabular-nums;font-weight:650}
.crumbs{margin:0 0 .75rem}
.rhead{display:flex;flex-wrap:wrap;gap:.5rem .75rem;align-items:center;margin:0 0 1rem}
.rhead h2{margin:0;font-size:1.3rem;overflow-wrap:anywhere}
.rhead code{font-size:1.1rem}
.alert{margin:0 0 1rem;padding:.6rem .9rem;border-radius:8px;border:1px solid var(--line);border-left:6px solid var(--muted-fg);background:var(--card);overflow-wrap:anywhere}
.alert.busy{border-left-color:#c98a00;background:var(--busy-bg)}
.alert.bad{border-left-color:#c0271a;background:var(--bad-bg)}
.alert.info{border-left-color:#0b5cad;background:var(--info-bg)}
.cols{display:grid;grid-template-columns:minmax(0,3fr) minmax(0,2fr);gap:0 1.25rem;align-items:start}
.fields{margin:0;display:grid;grid-template-columns:minmax(8rem,max-content) minmax(0,1fr)}
.fields dt,.fields dd{margin:0;padding:.45rem .6rem;border-bottom:1px solid var(--line)}
.fields dt{font-weight:650;color:#32383f;font-size:.85rem}
.fields dd{overflow-wrap:anywhere}
.fields .mono,code{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;font-size:.85rem}
.free{white-space:pre-wrap}
.note,.rel{color:var(--muted)}
.subid{display:block;color:var(--muted);font-size:.8rem;font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;overflow-wrap:anywhere}
.steps{list-style:none;margin:0;padding:0}
.steps li{padding:.5rem .6rem;border-bottom:1px solid var(--line)}
.steps li:last-child{border-bottom:0}
.stepwhen{display:block;color:var(--muted);font-size:.8rem}
td.rid a.id,td.rid span.id{font-size:.85rem}
.kind{display:inline-block;font-size:.7rem;font-weight:700;letter-spacing:.04em;color:var(--step-fg);border:1px solid #c9b8ef;border-radius:4px;padding:0 .3rem;margin-right:.3rem}
.timeline{list-style:none;margin:.5rem 0 0;padding:0;position:relative}
.timeline::before{content:"";position:absolute;left:.45rem;top:.3rem;bottom:.3rem;width:2px;background:var(--line)}
.timeline li{position:relative;padding:.35rem 0 .6rem 1.75rem}
.timeline li::before{content:"";position:absolute;left:.12rem;top:.6rem;width:.7rem;height:.7rem;border-radius:50%;background:#fff;border:2px solid var(--muted-fg)}
.timeline li.ok::before{border-color:#1a7f37}.timeline li.bad::before{border-color:#c0271a}.timeline li.info::before{border-color:#0b5cad}
.timeline li.step::before{background:var(--step-fg);border-color:var(--step-fg)}
.timeline li.step .ev{background:var(--step-bg);border-left:3px solid var(--step-fg);border-radius:6px;padding:.35rem .6rem}
.timeline .line{display:flex;flex-wrap:wrap;gap:.15rem .6rem;align-items:baseline}
.timeline .actor{color:var(--muted);font-size:.85rem;overflow-wrap:anywhere}
.timeline .detail{margin:.15rem 0 0;overflow-wrap:anywhere;white-space:pre-wrap}
footer{max-width:1440px;margin:0 auto;padding:0 1.5rem 2rem;color:var(--muted);font-size:.8rem}
footer p{margin:.2rem 0}
.error{max-width:44rem;margin:3rem auto;background:var(--card);border:1px solid var(--line);border-left:6px solid #c0271a;border-radius:8px;padding:1.25rem 1.5rem}
.error h1{margin:0 0 .5rem;font-size:1.3rem}
.error p{overflow-wrap:anywhere}
@media (max-width:900px){.cols{grid-template-columns:minmax(0,1fr)}}
@media (max-width:720px){.top{padding:.8rem 1rem}main{padding:1rem .75rem 2rem}section{padding:.8rem .7rem}.search{flex-basis:100%}.filter select{min-width:0;width:100%}.filter .fld{flex:1 1 100%}
.fields{grid-template-columns:minmax(0,1fr)}.fields dt{border-bottom:0;padding-bottom:0}.fields dd{padding-top:.1rem}}
@media print{.top{background:none;color:#000}.search,.filter{display:none}body{background:#fff}}
`

// layoutSource holds the parts every page shares.
const layoutSource = `
{{- define "head"}}<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
{{- if .Refresh}}
<meta http-equiv="refresh" content="{{.Refresh}}; url={{.Self}}">
{{- end}}
<meta name="referrer" content="no-referrer">
<link rel="icon" href="data:,">
<style nonce="{{.Nonce}}">{{css}}</style>
{{- end}}

{{- define "top"}}
<a class="skip" href="#main">Skip to content</a>
<header class="top">
<div>
<h1><a href="?">Just-in-time access</a></h1>
<p class="sub">Operators' dashboard · as of {{template "when" .Now}}{{if .Refresh}} · refreshes every {{.Refresh}} s{{end}}</p>
</div>
<form class="search" method="get" role="search" aria-label="Search requests">
<label for="q">Search</label>
<input id="q" name="q" type="search" value="{{.Search}}" maxlength="256" autocomplete="off" spellcheck="false" placeholder="Request id, requester (UPN or object id) or ticket">
<button type="submit">Search</button>
</form>
</header>
{{- end}}

{{- define "foot"}}
<footer>
<p id="tz">Times are UTC.</p>
<p>Listings are bounded: 200 requests per state ({{rangeBound}} per ended state with a date range), and a section says when its listing had more; the read API (<code>/api/requests</code>) has them all.</p>
</footer>
<script>{{js}}</script>
</body>
</html>
{{- end}}

{{- define "t"}}{{if .Cut}}<span class="long" title="{{.Full}}">{{.Short}}</span>{{else}}{{.Short}}{{end}}{{end}}
{{- define "who"}}<span class="who{{if .Label.Cut}} long{{end}}"{{with .Title}} title="{{.}}"{{end}}>{{.Label.Short}}</span>{{end}}
{{- define "ref"}}{{if .Link}}<a class="id" href="?request={{.ID}}">{{template "t" .Label}}</a>{{else}}<span class="id">{{template "t" .Label}}</span>{{end}}{{end}}
{{- define "cause"}}{{.Text}}{{range $i, $r := .IDs}}{{if $i}}, {{end}}<a href="?request={{$r.ID}}">{{$r.ID}}</a>{{end}}{{end}}
{{- define "when"}}{{if .ISO}}<time datetime="{{.ISO}}" title="{{.Title}}"{{if .Secs}} data-s{{end}}>{{.Show}}</time>{{else}}—{{end}}{{end}}
{{- define "badge"}}<span class="badge {{.Class}}"{{with .Hint}} title="{{.}}"{{end}}>{{.Label}}</span>{{end}}
{{- define "more"}}<p class="more">A listing for this section had more than {{.}} requests; only the first {{.}} were considered, so rows may be missing here. The read API (<code>/api/requests</code>) lists them all.</p>{{end}}
{{- define "sessions"}}{{.Text}}{{if not .Cause.Empty}}<span class="cause">{{template "cause" .Cause}}</span>{{end}}{{end}}
`

const pageSource = `
{{- define "page"}}{{template "head" .}}
<title>{{if .Profile}}{{.Profile}} · {{end}}jitaccess operators' dashboard</title>
</head>
<body>
{{- template "top" .}}
<main id="main">
<form class="filter" method="get" aria-label="Filter the dashboard">
<div class="fld">
<label for="profile">Profile</label>
<select id="profile" name="profile">
<option value=""{{if not .Profile}} selected{{end}}>All profiles</option>
{{- range .Profiles}}
<option value="{{.Name}}"{{if .Selected}} selected{{end}}>{{.Name}}</option>
{{- end}}
</select>
</div>
<fieldset class="range">
<legend>Endings and denials (UTC days; empty: the last 24 hours)</legend>
<div class="fld"><label for="from">From</label><input type="date" id="from" name="from" value="{{.Win.From}}"></div>
<div class="fld"><label for="to">To</label><input type="date" id="to" name="to" value="{{.Win.To}}"></div>
</fieldset>
<div class="acts"><button type="submit">Apply</button>{{if or .Profile .Win.Custom}}<a href="?">Reset</a>{{end}}</div>
</form>
{{- if .Profile}}
<p class="hint">Showing profile <strong>{{.Profile}}</strong> only.</p>
{{- end}}
<nav aria-label="Summary">
<ul class="cards">
{{- range .Counts}}
<li class="card {{.Tone}}"><a href="#{{.Anchor}}"><span class="n">{{.Value}}</span><span class="l">{{.Label}}</span></a></li>
{{- end}}
</ul>
</nav>

<section id="active" aria-labelledby="active-h">
<h2 id="active-h">Active grants <span class="count">{{len .Active.Rows}}</span></h2>
<p class="hint">Members of a target group (or holders of a role) through jitaccess or PIM now, soonest end first. <em>Activating</em> and <em>ending</em> mean the change is being carried out.</p>
{{- if .Active.Rows}}
<div class="scroll" role="region" aria-labelledby="active-h" tabindex="0">
<table>
<caption>Active grants with approvers, start, end and time left</caption>
<thead><tr><th scope="col">Requester</th><th scope="col">Profile</th><th scope="col">Approved by</th><th scope="col">Justification</th><th scope="col">Activated</th><th scope="col">Ends</th><th scope="col">Time left</th><th scope="col">State</th></tr></thead>
<tbody>
{{- range .Active.Rows}}
<tr>
<td>{{template "who" .Who}}{{template "ref" .ID}}</td>
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
{{- if .Active.More}}{{template "more" .Active.Limit}}{{end}}
</section>

<section id="pending" aria-labelledby="pending-h">
<h2 id="pending-h">Pending approvals <span class="count">{{len .Pending.Rows}}</span></h2>
<p class="hint">Requests waiting for approvers, longest waiting first.</p>
{{- if .Pending.Rows}}
<div class="scroll" role="region" aria-labelledby="pending-h" tabindex="0">
<table>
<caption>Pending requests with their age and approvals so far</caption>
<thead><tr><th scope="col">Requester</th><th scope="col">Profile</th><th scope="col">Duration</th><th scope="col">Justification</th><th scope="col">Requested</th><th scope="col">Waiting</th><th scope="col">Approvals</th></tr></thead>
<tbody>
{{- range .Pending.Rows}}
<tr>
<td>{{template "who" .Who}}{{template "ref" .ID}}</td>
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
{{- if .Pending.More}}{{template "more" .Pending.Limit}}{{end}}
</section>

<section id="attention" aria-labelledby="attention-h">
<h2 id="attention-h">Needs attention <span class="count">{{.AttentionCount}}</span></h2>
<p class="hint">Failed requests of the last 7 days, and membership or session work unfinished for more than 5 minutes (the sweep keeps retrying it).</p>
{{- with .Unreadable}}{{if .N}}
<p class="unreadable" role="alert"><strong>{{.N}} stored {{.Noun}} could not be read</strong> (damaged, or written by a newer version of jitaccess), so {{if eq .N 1}}it is{{else}}they are{{end}} left out of this page and nothing acts on {{if eq .N 1}}it{{else}}them{{end}}; the log names the problem: {{range $i, $id := .IDs}}{{if $i}}, {{end}}{{if $id.Link}}<a href="?request={{$id.ID}}"><code>{{$id.Label.Short}}</code></a>{{else}}<code>{{$id.Label.Short}}</code>{{end}}{{end}}{{if .More}} and {{.More}} more{{end}}.</p>
{{- end}}{{end}}
{{- if .Attention.Rows}}
<div class="scroll" role="region" aria-labelledby="attention-h" tabindex="0">
<table>
<caption>Requests that need an operator, newest first</caption>
<thead><tr><th scope="col">Requester</th><th scope="col">Profile</th><th scope="col">State</th><th scope="col">Problem</th><th scope="col">Since</th><th scope="col">For</th></tr></thead>
<tbody>
{{- range .Attention.Rows}}
<tr>
<td>{{template "who" .Who}}{{template "ref" .ID}}</td>
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
{{- if .Attention.More}}{{template "more" .Attention.Limit}}{{end}}
</section>

<section id="endings" aria-labelledby="endings-h">
<h2 id="endings-h">{{if .Win.Custom}}Endings{{else}}Recent endings{{end}} <span class="count">{{len .Endings.Rows}}</span></h2>
<p class="hint">Grants and requests that expired, were revoked, cancelled or timed out {{.Win.Phrase}}, newest first.{{if .Lingering}} <strong>{{.Lingering}} ended grant{{if ne .Lingering 1}}s{{end}} may still be used until the time in the last column</strong>: an access token issued before the end keeps its groups claim for its lifetime; a deleted role assignment may authorize until the RBAC caches expire (README).{{end}}</p>
{{- if .Endings.Rows}}
<div class="scroll" role="region" aria-labelledby="endings-h" tabindex="0">
<table>
<caption>Endings {{.Win.Phrase}} with who ended them, why, and the sign-in sessions</caption>
<thead><tr><th scope="col">Requester</th><th scope="col">Profile</th><th scope="col">Outcome</th><th scope="col">Ended</th><th scope="col">By</th><th scope="col">Why</th><th scope="col">Sessions</th><th scope="col">Access gone by</th></tr></thead>
<tbody>
{{- range .Endings.Rows}}
<tr>
<td>{{template "who" .Who}}{{template "ref" .ID}}</td>
<td class="prof">{{template "t" .Profile}}</td>
<td>{{template "badge" .Outcome}}</td>
<td class="when">{{template "when" .Ended}}</td>
<td>{{template "t" .By}}</td>
<td class="why">{{template "t" .Why}}</td>
<td>{{template "sessions" .Sessions}}</td>
<td class="when">{{if .GoneBy.ISO}}{{if .Lingers}}access may linger until {{end}}{{template "when" .GoneBy}}{{else}}—{{end}}</td>
</tr>
{{- end}}
</tbody>
</table>
</div>
{{- else}}
<p class="empty">Nothing ended {{.Win.Phrase}}.</p>
{{- end}}
{{- if .Endings.More}}{{template "more" .Endings.Limit}}{{end}}
</section>

<section id="denied" aria-labelledby="denied-h">
<h2 id="denied-h">Denied and rejected <span class="count">{{len .Denied.Rows}}</span></h2>
<p class="hint">Denied requests, rejected requests and rejected events without a usable request id{{if .Profile}} (those have no profile and are listed with all profiles only){{else}} (the newest 50 of those){{end}}, {{.Win.Phrase}}, newest first.</p>
{{- if .Denied.Rows}}
<div class="scroll" role="region" aria-labelledby="denied-h" tabindex="0">
<table>
<caption>Denials and rejections {{.Win.Phrase}} with their reasons</caption>
<thead><tr><th scope="col">When</th><th scope="col">Outcome</th><th scope="col">Requester</th><th scope="col">Profile</th><th scope="col">Request</th><th scope="col">By</th><th scope="col">Reason</th></tr></thead>
<tbody>
{{- range .Denied.Rows}}
<tr>
<td class="when">{{template "when" .At}}</td>
<td>{{template "badge" .Kind}}</td>
<td><span class="who">{{template "t" .Who}}</span></td>
<td class="prof">{{template "t" .Profile}}</td>
<td>{{template "ref" .ID}}</td>
<td>{{template "t" .By}}</td>
<td class="why">{{template "t" .Reason}}</td>
</tr>
{{- end}}
</tbody>
</table>
</div>
{{- else}}
<p class="empty">Nothing was denied or rejected {{.Win.Phrase}}.</p>
{{- end}}
{{- if .Denied.More}}{{template "more" .Denied.Limit}}{{end}}
</section>

<section id="outofband" aria-labelledby="outofband-h">
<h2 id="outofband-h">Out-of-band findings <span class="count">{{len .Findings.Rows}}</span></h2>
<p class="hint">Members added to a target group outside jitaccess and PIM (from Entra audit events): still present, or removed in the last 7 days.</p>
{{- if .Findings.Rows}}
<div class="scroll" role="region" aria-labelledby="outofband-h" tabindex="0">
<table>
<caption>Out-of-band members, newest first</caption>
<thead><tr><th scope="col">Member</th><th scope="col">Profile</th><th scope="col">Group</th><th scope="col">Observed</th><th scope="col">State</th><th scope="col">Detail</th></tr></thead>
<tbody>
{{- range .Findings.Rows}}
<tr>
<td>{{template "who" .Member}}{{template "ref" .ID}}</td>
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
{{- if .Findings.More}}{{template "more" .Findings.Limit}}{{end}}
</section>
</main>
{{- template "foot" .}}
{{- end}}
`

const searchSource = `
{{- define "search"}}{{template "head" .}}
<title>Search: {{.Search}} · jitaccess</title>
</head>
<body>
{{- template "top" .}}
<main id="main">
<p class="crumbs"><a href="?">← Dashboard</a></p>
<section id="results" aria-labelledby="results-h">
<h2 id="results-h">Requests matching <q>{{.Search}}</q>{{if .Profile}} in profile {{.Profile}}{{end}} <span class="count">{{.Total}}</span></h2>
<p class="hint">Looked for: the requests of this requester (UPN or object id){{if .Indexed}}, read from the requester index{{end}}; and, among the {{.Scanned}} requests the dashboard lists (at most 200 per state), those whose ticket or request id contains the text. Tickets have no index, so an older request whose state's listing had more than 200 may be missing{{if .ScanMore}} — <strong>some listings had more</strong>{{end}}. An exact request id opens that request.</p>
{{- if .DirectoryFailed}}
<p class="more" role="status">The directory did not answer, so the UPN could not be turned into an object id; only the listed requests were searched for it.</p>
{{- end}}
{{- if .Rows}}
<div class="scroll" role="region" aria-labelledby="results-h" tabindex="0">
<table>
<caption>Matching requests, newest first</caption>
<thead><tr><th scope="col">Request</th><th scope="col">Requester</th><th scope="col">Profile</th><th scope="col">State</th><th scope="col">Ticket</th><th scope="col">Last change</th><th scope="col">Matched on</th></tr></thead>
<tbody>
{{- range .Rows}}
<tr>
<td class="rid">{{template "ref" .ID}}</td>
<td>{{template "who" .Who}}</td>
<td class="prof">{{template "t" .Profile}}</td>
<td>{{template "badge" .State}}</td>
<td class="why">{{template "t" .Ticket}}</td>
<td class="when">{{.WhenLabel}} {{template "when" .When}}</td>
<td>{{.Matched}}</td>
</tr>
{{- end}}
</tbody>
</table>
</div>
{{- if gt .Total (len .Rows)}}
<p class="more">Showing the newest {{len .Rows}} of {{.Total}} matches.</p>
{{- end}}
{{- else}}
<p class="empty">No request matches <q>{{.Search}}</q>.</p>
{{- end}}
{{- if .IndexMore}}
<p class="more">This requester has more than 200 requests; only the first 200 of the index were read. The read API (<code>/api/requests?requester=…</code>) lists them all.</p>
{{- end}}
</section>
</main>
{{- template "foot" .}}
{{- end}}
`

const detailSource = `
{{- define "detail"}}{{template "head" .}}
<title>Request {{.ID}} · jitaccess</title>
</head>
<body>
{{- template "top" .}}
<main id="main">
<p class="crumbs"><a href="?">← Dashboard</a></p>
<div class="rhead">
<h2>Request <code>{{.ID}}</code></h2>
{{template "badge" .State}}{{if .Source}}<span class="tag">{{.Source}}</span>{{end}}
</div>
{{- range .Alerts}}
<p class="alert {{.Tone}}" role="status"><strong>{{.Title}}</strong>{{if .When.ISO}} {{template "when" .When}}{{end}}{{if .Text}} {{.Text}}{{end}}</p>
{{- end}}
<div class="cols">
<section id="fields" aria-labelledby="fields-h">
<h2 id="fields-h">Request</h2>
<dl class="fields">
{{- range .Fields}}
<dt>{{.Label}}</dt>
<dd>
{{- if .Badge}}{{template "badge" .Badge}}{{end}}
{{- if .Sessions}}{{template "sessions" .Sessions}}{{end}}
{{- if .Text}}<span class="{{if .Mono}}mono{{end}}{{if .Free}} free{{end}}">{{.Text}}</span>{{end}}
{{- if .When.ISO}}{{if .Text}} · {{end}}{{template "when" .When}}{{end}}
{{- if .Empty}}—{{end}}
{{- if .Rel}} <span class="rel">({{.Rel}})</span>{{end}}
{{- if .Note}} <span class="note">{{.Note}}</span>{{end}}
{{- if .Sub}}<span class="subid">{{.Sub}}</span>{{end -}}
</dd>
{{- end}}
</dl>
</section>
<div>
<section id="approvals" aria-labelledby="approvals-h">
<h2 id="approvals-h">Approvals <span class="count">{{len .Approvals}}</span></h2>
{{- if .Approvals}}
<ul class="steps">
{{- range .Approvals}}
<li>{{template "who" .Who}} · {{template "when" .At}}{{if .Who.ID}}<span class="subid">object id {{.Who.ID}}</span>{{end}}{{if .Comment}}<p class="detail free">{{.Comment}}</p>{{end}}</li>
{{- end}}
</ul>
{{- else}}
<p class="empty">{{.ApprovalsNote}}</p>
{{- end}}
</section>
<section id="steps" aria-labelledby="steps-h">
<h2 id="steps-h">Graph and ARM steps <span class="count">{{len .Steps}}</span></h2>
<p class="hint">What jitaccess changed in the directory or in Azure, and the steps that had nothing to do, with the reason.</p>
{{- if .Steps}}
<ul class="steps">
{{- range .Steps}}
<li><span class="stepwhen">{{template "when" .When}}</span>{{if .Kind}}<span class="kind">{{.Kind}}</span>{{end}}<strong>{{.Label}}</strong>{{if not .Detail.Empty}}<span class="cause">{{template "cause" .Detail}}</span>{{end}}</li>
{{- end}}
</ul>
{{- else}}
<p class="empty">{{.StepsNote}}</p>
{{- end}}
</section>
</div>
</div>
<section id="history" aria-labelledby="history-h">
<h2 id="history-h">History <span class="count">{{len .History}}</span></h2>
<p class="hint">Every entry of the request's audit trail, oldest first. Membership, role and session steps are highlighted.</p>
{{- if .History}}
<ol class="timeline">
{{- range .History}}
<li class="{{.Tone}}{{if and .Step (ne .Tone "step")}} step{{end}}"><div class="ev">
<div class="line">{{template "when" .When}} <span class="badge {{.Tone}}">{{if .Kind}}{{.Kind}}: {{end}}{{.Label}}</span>{{if .Actor.Short}} <span class="actor">by {{template "t" .Actor}}</span>{{end}}</div>
{{- if not .Detail.Empty}}
<p class="detail">{{template "cause" .Detail}}</p>
{{- end}}
{{- if .Event}}<span class="id">event {{.Event}}</span>{{end}}
</div></li>
{{- end}}
</ol>
{{- else}}
<p class="empty">No history recorded.</p>
{{- end}}
</section>
</main>
{{- template "foot" .}}
{{- end}}
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
<p><a href="?">Show the dashboard</a></p>
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
	// js returns the fixed script (timeScript), a constant allowed by its
	// hash in the CSP; never data.
	"js": func() template.JS { return template.JS(timeScript) },
	// rangeBound is how many requests an ended state's listing reads with
	// a date range.
	"rangeBound": func() int { return RangePages * ListLimit },
}

var (
	pageTmpl = template.Must(template.Must(template.Must(template.Must(
		template.New("layout").Funcs(funcs).Parse(layoutSource)).
		Parse(pageSource)).Parse(searchSource)).Parse(detailSource))
	errorTmpl = template.Must(template.New("error").Funcs(funcs).Parse(errorSource))
)
