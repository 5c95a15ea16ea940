"""The HTML page of ``graphc.report``: one self-contained file (inline CSS, JS and SVG).

:func:`page` assembles the sections :mod:`graphc.report` prepared.  Nothing is
fetched: no scripts, styles, fonts or images from the network; the SVG's XML
prolog and namespace URLs are dropped (HTML parses inline SVG without them).
Every node, trace row and code line carries the node ids it stands for; one
click handler highlights the same value in all views and shows its user line.
"""
from __future__ import annotations

import html
import json
import re

__all__ = ["page", "svg_inline", "esc"]

CSS = """
body{font-family:Helvetica,Arial,sans-serif;margin:0;color:#111827;background:#f9fafb}
header{padding:10px 18px;background:#1f2937;color:#f9fafb}
header h1{font-size:20px;margin:0}
header p{margin:4px 0 0;font-size:13px;color:#d1d5db}
#info{position:sticky;top:0;z-index:5;background:#fffbeb;border-bottom:1px solid #fcd34d;
 padding:6px 18px;font-family:monospace;font-size:13px;min-height:18px;white-space:pre-wrap}
main{display:grid;grid-template-columns:minmax(0,1.1fr) minmax(0,1fr);gap:12px;padding:12px}
section{background:#fff;border:1px solid #e5e7eb;border-radius:8px;padding:8px 12px;
 overflow:auto}
section h2{font-size:15px;margin:4px 0 8px}
#drawing{grid-column:1;grid-row:1 / span 2;max-height:92vh}
#drawing svg{max-width:100%;height:auto}
#trace,#code{max-height:45vh}
#proof,#cost{grid-column:span 1}
table{border-collapse:collapse;font-size:12px;width:100%}
th,td{border-bottom:1px solid #f3f4f6;padding:2px 6px;text-align:left;vertical-align:top}
th{background:#f3f4f6;position:sticky;top:0}
td.code{font-family:monospace;white-space:pre}
tr.row{cursor:pointer}
tr.row:hover{background:#eff6ff}
tr.bwd td.code{color:#991b1b}
pre{font-size:12px;margin:0}
#code pre .ln{display:block;cursor:pointer;white-space:pre}
#code pre .ln:hover{background:#eff6ff}
#code pre .no{display:inline-block;width:3.5em;color:#9ca3af;user-select:none}
#code pre .cm{color:#6b7280}
.hl{background:#fde68a !important;outline:2px solid #f59e0b}
g.node{cursor:pointer}
g.node.hl polygon,g.node.hl ellipse,g.node.hl path{stroke:#f59e0b;stroke-width:4px}
.ok{color:#166534;font-weight:bold}.bad{color:#991b1b;font-weight:bold}
"""

JS = """
(function(){
  var data = JSON.parse(document.getElementById('graphc-data').textContent);
  var info = document.getElementById('info');
  function clear(){
    document.querySelectorAll('.hl').forEach(function(e){e.classList.remove('hl');});
  }
  function mark(sel){
    document.querySelectorAll(sel).forEach(function(e){e.classList.add('hl');});
  }
  function select(nids){
    clear();
    if(!nids.length){return;}
    nids.forEach(function(n){
      var d = data.nodes[n]; if(!d){return;}
      mark('tr[data-nid="'+n+'"]');
      if(d.svg){var g=document.getElementById(d.svg); if(g){g.classList.add('hl');}}
      if(d.line){mark('#code .ln[data-line="'+d.line+'"]');}
    });
    var d = data.nodes[nids[0]];
    info.textContent = d.name + (d.type ? '  ' + d.type : '') +
      (d.value ? '  = ' + d.value : '') + '\\nsource: ' + (d.where || '(no user line)') +
      (d.line ? '   code line ' + d.line : '');
    var row = document.querySelector('tr[data-nid="'+nids[0]+'"]');
    if(row){row.scrollIntoView({block:'center'});}
    var ln = d.line && document.querySelector('#code .ln[data-line="'+d.line+'"]');
    if(ln){ln.scrollIntoView({block:'center'});}
  }
  document.addEventListener('click', function(e){
    var t = e.target;
    var g = t.closest && t.closest('g.node');
    if(g && data.svg[g.id]){ e.preventDefault(); select(data.svg[g.id]); return; }
    var tr = t.closest && t.closest('tr.row');
    if(tr){ select([tr.getAttribute('data-nid')]); return; }
    var ln = t.closest && t.closest('#code .ln');
    if(ln){ select(data.lines[ln.getAttribute('data-line')] || []); return; }
  });
  window.graphcSelect = select;
})();
"""


def esc(text) -> str:
    return html.escape(str(text), quote=True)


def svg_inline(svg: str) -> str:
    """Graphviz's SVG without its XML prolog, DOCTYPE and namespace URLs: inline in HTML."""
    svg = svg[svg.find("<svg"):] if "<svg" in svg else svg
    svg = re.sub(r'\s+xmlns(:xlink)?="[^"]*"', "", svg)
    return svg


def _code_html(source: str) -> str:
    out = []
    for i, line in enumerate(source.splitlines(), 1):
        code, sep, comment = line.partition("  # ")
        text = esc(code) + (f'<span class="cm">{esc(sep + comment)}</span>' if sep else "")
        if line.lstrip().startswith("#"):
            text = f'<span class="cm">{esc(line)}</span>'
        out.append(f'<span class="ln" data-line="{i}"><span class="no">{i}</span>{text}</span>')
    return "<pre>" + "".join(out) + "</pre>"


def _trace_html(rows) -> str:
    head = ("<table><tr><th>#</th><th>evaluation trace</th><th>type</th><th>value</th>"
            "<th>user line</th></tr>")
    body = []
    for r in rows:
        cls = "row bwd" if r["section"] == "backward" else "row"
        body.append(f'<tr class="{cls}" data-nid="{r["nid"]}"><td>{r["i"]}</td>'
                    f'<td class="code">{esc(r["text"])}</td><td>{esc(r["type"])}</td>'
                    f'<td class="code">{esc(r["value"])}</td><td>{esc(r["where"])}</td></tr>')
    return head + "".join(body) + "</table>"


def page(*, title, subtitle, svg, rows_forward, rows_backward, source, proof, cost, data) -> str:
    """The whole page; ``data`` holds ``nodes`` ({nid: {...}}), ``svg`` ({svg id: [nids]})
    and ``lines`` ({line: [nids]})."""
    payload = json.dumps(data).replace("</", "<\\/")
    backward = (f"<h2>Backward trace: adjoints</h2>{_trace_html(rows_backward)}"
                if rows_backward else "")
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{esc(title)}</title>
<style>{CSS}</style></head>
<body>
<header><h1>{esc(title)}</h1><p>{esc(subtitle)}</p></header>
<div id="info">Click a node, a trace row or a code line: the same value lights up everywhere.</div>
<main>
<section id="drawing"><h2>Graph</h2>{svg}</section>
<section id="trace"><h2>Forward trace: values</h2>{_trace_html(rows_forward)}{backward}</section>
<section id="code"><h2>Generated code</h2>{_code_html(source)}</section>
<section id="proof"><h2>Proof (SymPy, graphc.check)</h2>{proof}</section>
<section id="cost"><h2>Cost</h2>{cost}</section>
</main>
<script type="application/json" id="graphc-data">{payload}</script>
<script>{JS}</script>
</body></html>
"""
