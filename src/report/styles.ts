/** The reporting page's stylesheet, served from /dashboard/assets/app.css (the CSP allows no inline styles). */
export const DASHBOARD_CSS = `
:root{--bg:#f6f7f9;--panel:#fff;--ink:#161a21;--muted:#5d6673;--line:#e3e6eb;--accent:#3b5bdb;--accent-ink:#fff;
--ok:#2b8a3e;--warn:#e67700;--bad:#c92a2a;--info:#7048e8;--radius:10px;
font-family:ui-sans-serif,system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif;color-scheme:light dark}
@media (prefers-color-scheme:dark){:root{--bg:#0f1115;--panel:#171a21;--ink:#e8eaee;--muted:#9aa3b1;--line:#2a2f3a;--accent:#748ffc}}
*{box-sizing:border-box}
body{margin:0;background:var(--bg);color:var(--ink);font-size:15px;line-height:1.45}
a{color:var(--accent)}
.skip{position:absolute;left:-999px}.skip:focus{left:8px;top:8px;background:var(--panel);padding:6px 10px;z-index:9}
header.top{background:var(--panel);border-bottom:1px solid var(--line);position:sticky;top:0;z-index:5}
.bar{max-width:1200px;margin:0 auto;padding:10px 16px;display:flex;flex-wrap:wrap;gap:10px 18px;align-items:center}
.brand{font-weight:700;font-size:17px;text-decoration:none;color:var(--ink);display:flex;gap:8px;align-items:center}
.brand .logo{width:22px;height:22px;border-radius:6px;background:linear-gradient(135deg,#f76707,#3b5bdb)}
nav.main ul{list-style:none;margin:0;padding:0;display:flex;flex-wrap:wrap;gap:4px}
nav.main a{display:block;padding:6px 10px;border-radius:8px;text-decoration:none;color:var(--muted);font-weight:500}
nav.main a[aria-current=page]{background:var(--bg);color:var(--ink)}
nav.main a:hover{color:var(--ink)}
.spacer{flex:1}
form.inline{display:flex;gap:6px;align-items:flex-end;flex-wrap:wrap;margin:0;max-width:100%}
form.inline select{max-width:240px}
main{max-width:1200px;margin:0 auto;padding:18px 16px 48px}
h1{font-size:22px;margin:4px 0 14px}h2{font-size:17px;margin:0 0 10px}
.head{display:flex;flex-wrap:wrap;gap:10px;align-items:center;justify-content:space-between;margin-bottom:12px}
.seg{display:inline-flex;border:1px solid var(--line);border-radius:9px;overflow:hidden;background:var(--panel)}
.seg a{padding:6px 12px;text-decoration:none;color:var(--muted);border-right:1px solid var(--line)}
.seg a:last-child{border-right:0}.seg a[aria-current=true]{background:var(--accent);color:var(--accent-ink)}
section.panel,.card{background:var(--panel);border:1px solid var(--line);border-radius:var(--radius);padding:14px 16px;margin-bottom:14px}
.cards{display:grid;grid-template-columns:repeat(auto-fit,minmax(150px,1fr));gap:10px;margin-bottom:14px}
.card{margin:0}.card .label{color:var(--muted);font-size:13px}.card .value{font-size:26px;font-weight:650;font-variant-numeric:tabular-nums}
.card .sub{font-size:12px;color:var(--muted)}
.grid2{display:grid;grid-template-columns:repeat(auto-fit,minmax(320px,1fr));gap:14px}
.rate{display:flex;justify-content:space-between;align-items:baseline;padding:8px 0;border-bottom:1px solid var(--line)}
.rate:last-child{border-bottom:0}.rate .v{font-size:20px;font-weight:650;font-variant-numeric:tabular-nums}
.badge{display:inline-block;padding:1px 8px;border-radius:99px;font-size:12px;font-weight:600;background:var(--bg);color:var(--muted);white-space:nowrap}
.badge.ok,.st-delivered{background:#d3f9d8;color:#1b5e20}.badge.bad,.st-bounced,.st-failed,.st-complained{background:#ffe3e3;color:#8b1a1a}
.badge.warn,.st-deferred,.st-expired{background:#fff3bf;color:#7a4b00}.st-queued,.st-accepted{background:#e7f5ff;color:#1c4f80}
.st-suppressed{background:#f3f0ff;color:#4b2aa8}
.table-wrap{overflow-x:auto}
table{border-collapse:collapse;width:100%;font-size:14px}
th,td{text-align:left;padding:7px 8px;border-bottom:1px solid var(--line);vertical-align:top}
th{font-size:12px;text-transform:uppercase;letter-spacing:.03em;color:var(--muted);font-weight:600}
td.num,th.num{text-align:right;font-variant-numeric:tabular-nums}
td.mono,.mono{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;font-size:13px;word-break:break-all}
.muted{color:var(--muted)}
td.nowrap,.nowrap{white-space:nowrap;word-break:normal}
input,select,button{max-width:100%;font:inherit;padding:7px 10px;border:1px solid var(--line);border-radius:8px;background:var(--panel);color:var(--ink)}
button,.button{background:var(--accent);color:var(--accent-ink);border-color:var(--accent);cursor:pointer;font-weight:600;text-decoration:none;display:inline-block}
button.secondary{background:var(--panel);color:var(--ink);border-color:var(--line)}
button.danger{background:var(--panel);color:var(--bad);border-color:var(--line)}
label{font-size:13px;color:var(--muted);display:flex;flex-direction:column;gap:4px}
.formrow{display:flex;flex-wrap:wrap;gap:10px;align-items:flex-end}
.notice{padding:10px 12px;border-radius:8px;background:#e7f5ff;color:#1c4f80;margin-bottom:12px}
.freshness{font-size:13px;margin:-4px 0 12px}.freshness.behind{padding:8px 12px;border-radius:8px;background:#fff3bf;color:#7a4b00}
.notice.error{background:#ffe3e3;color:#8b1a1a}
figure.chart{margin:0}figure.chart svg{width:100%;height:auto;display:block}
.chart .grid{stroke:var(--line);stroke-width:1}.chart .axis{fill:var(--muted);font-size:11px}
.chart .hit{fill:transparent}.chart g:hover .hit{fill:rgba(127,127,127,.08)}
.s-delivered{fill:#40c057;background:#40c057}.s-deferred{fill:#fab005;background:#fab005}.s-bounced{fill:#fa5252;background:#fa5252}
.s-complained{fill:#7950f2;background:#7950f2}
.legend{list-style:none;display:flex;flex-wrap:wrap;gap:14px;padding:0;margin:8px 0 0;font-size:13px;color:var(--muted)}
.swatch{display:inline-block;width:10px;height:10px;border-radius:3px;margin-right:6px}
ol.timeline{list-style:none;margin:0;padding:0}
ol.timeline li{display:grid;grid-template-columns:170px 110px 1fr;gap:8px;padding:8px 0;border-bottom:1px solid var(--line)}
dl.kv{display:grid;grid-template-columns:max-content 1fr;gap:6px 16px;margin:0}dl.kv dt{color:var(--muted)}dl.kv dd{margin:0;word-break:break-word}
.login{max-width:380px;margin:10vh auto;background:var(--panel);border:1px solid var(--line);border-radius:var(--radius);padding:24px}
.login form{display:flex;flex-direction:column;gap:12px}
@media (max-width:640px){ol.timeline li{grid-template-columns:1fr}.card .value{font-size:22px}main{padding:12px 10px 40px}}
`;
