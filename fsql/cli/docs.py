"""`fsql docs generate` and `fsql docs serve`: the static catalog under target/docs."""

from __future__ import annotations

import typer

from fsql import console
from fsql.cli import options as opt
from fsql.cli.context import handled, project_options

docs_app = typer.Typer(
    name="docs",
    help="The catalog: every entity, source, view, feature and service, with lineage, SQL and results.",
    no_args_is_help=True,
    rich_markup_mode=None,
)


@docs_app.command()
@project_options
def generate(ctx: typer.Context) -> None:
    """Write the catalog to target/docs: index.html (opens from file://) and catalog.json."""
    with handled(ctx):
        page = ctx.obj.project().generate_docs()
        console.info(f"wrote {page} and {page.with_name('catalog.json').name}: open {page.resolve().as_uri()}")


@docs_app.command()
@project_options
def serve(ctx: typer.Context, host: opt.Host = "127.0.0.1", port: opt.DocsPort = 8080) -> None:
    """Serve target/docs over HTTP (run `fsql docs generate` first); Ctrl-C stops."""
    from fsql.docs import docs_dir, docs_server

    with handled(ctx):
        server = docs_server(docs_dir(ctx.obj.project()), host=host, port=port)
        console.info(f"serving the catalog on http://{host}:{server.server_port}/")
        try:
            server.serve_forever()
        except KeyboardInterrupt:
            pass
        finally:
            server.server_close()
