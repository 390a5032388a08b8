"""mkdocs hooks (mkdocs.yml `hooks:`): docs/config.md's reference tables are generated from the config
field declarations at build time (tallysim/config_reference.py), so the site never drifts from them."""
from tallysim import config_reference


def on_page_markdown(markdown, page, config, files, **kwargs):
    if page.file.src_uri == "config.md":
        if config_reference.MARKER not in markdown:
            raise ValueError(f"docs/config.md lost its {config_reference.MARKER} line")
        return config_reference.fill(markdown)
    return markdown
