"""The service's page at `/`: type a query, see the label, its score and whether the
out-of-scope fallback answered. Plain HTML and a few lines of script, no assets to serve."""

from __future__ import annotations

import html

PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
 body {{ font-family: system-ui, sans-serif; max-width: 40rem; margin: 3rem auto;
        padding: 0 1rem; color: #222; }}
 input {{ width: 100%; font-size: 1.1rem; padding: .5rem; box-sizing: border-box; }}
 button {{ margin-top: .6rem; font-size: 1rem; padding: .4rem 1.2rem; }}
 #answer {{ margin-top: 1.5rem; font-size: 1.2rem; }} .muted {{ color: #777; }}
 .fallback {{ color: #a04000; }} .error {{ color: #b00020; }}
</style></head>
<body>
<h1>{title}</h1>
<p class="muted">{kind} variant, {labels} labels. Answers out-of-scope queries with
<code>{oos}</code> when the model is not sure.</p>
<form id="ask"><input id="query" name="query" autofocus autocomplete="off"
 placeholder="e.g. how do I transfer money to my savings account?" maxlength="{max_chars}">
<button id="send" type="submit">Classify</button></form>
<div id="answer" aria-live="polite"></div>
<script>
const show = (html) => {{ document.getElementById("answer").innerHTML = html; }};
const esc = (s) => String(s).replace(/[&<>"']/g, c => ({{"&":"&amp;","<":"&lt;",">":"&gt;",
  '"':"&quot;","'":"&#39;"}})[c]);
document.getElementById("ask").addEventListener("submit", async (event) => {{
  event.preventDefault();
  const query = document.getElementById("query").value;
  try {{
    const reply = await fetch("predict", {{method: "POST",
      headers: {{"content-type": "application/json"}}, body: JSON.stringify({{inputs: query}})}});
    const body = await reply.json();
    if (!reply.ok) {{ show(`<span class="error" id="error">${{esc(body.error)}}</span>`); return; }}
    const a = body[0];
    show(`<div>Intent: <b id="label">${{esc(a.label)}}</b></div>` +
      `<div class="muted">score <span id="score">${{a.score.toFixed(3)}}</span></div>` +
      `<div id="fallback" class="${{a.fallback ? "fallback" : "muted"}}">` +
      (a.fallback ? "the out-of-scope fallback answered" : "the model answered") + "</div>");
  }} catch (err) {{ show(`<span class="error" id="error">${{esc(err)}}</span>`); }}
}});
</script>
</body></html>
"""


def render_page(name: str, kind: str, labels: int, oos: str, max_chars: int) -> str:
    return PAGE.format(title=html.escape(f"slimformer: {name}"), kind=html.escape(kind),
                       labels=labels, oos=html.escape(oos), max_chars=max_chars)
