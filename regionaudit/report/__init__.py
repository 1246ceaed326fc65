"""Reports: HTML, PDF and model-card Markdown, rendered from an `AuditResult` / `CompareResult`.

`context` turns a result into plain data (numbers formatted, sentences, tables, SVG plots);
the templates in `regionaudit.templates` lay it out; `html`, `pdf` and `card` render them to text
or bytes. Files are written only through `regionaudit.outputs`. PDF goes through WeasyPrint,
imported lazily.
"""
