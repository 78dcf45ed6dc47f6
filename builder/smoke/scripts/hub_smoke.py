"""Smoke check run inside an image: the image's own JupyterHub spawns its own
jupyterhub-singleuser, as a hub on Kubernetes would, and the server answers through it.

Runs with the image's Python, with no network but loopback:

1. start ``jupyterhub`` (the hub process the image carries beside the single-user server)
   on 127.0.0.1, with an in-memory proxy (there is no configurable-http-proxy in the image,
   and the check talks to the single-user server directly), the ``simple`` local-process
   spawner as the image's user, and a service token allowed to manage servers;
2. create the user and start its server through the hub's REST API: the hub passes the
   single-user server its API token, OAuth client and URLs, exactly what KubeSpawner
   passes, and the server checks them against the hub when it starts;
3. call the single-user server's API with the token, then stop it through the hub.

Prints one line: ``pass <what answered>`` or ``fail <why>``; the hub's log follows.
Usage: python hub_smoke.py USER PORT TIMEOUT
"""

import json
import os
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

HUB_PORT, API_PORT = 18000, 18081
TOKEN = "scistacks-smoke-" + os.urandom(8).hex()

CONFIG = """
from jupyterhub.proxy import Proxy


class InMemoryProxy(Proxy):
    '''Routes kept in a dict: nothing is proxied, the check calls the server directly.'''

    routes = {{}}

    async def start(self):
        pass

    async def stop(self):
        pass

    async def add_route(self, routespec, target, data):
        self.routes[routespec] = {{"routespec": routespec, "target": target, "data": data}}

    async def delete_route(self, routespec):
        self.routes.pop(routespec, None)

    async def get_all_routes(self):
        return dict(self.routes)


c = get_config()  # noqa: F821
c.JupyterHub.ip = "127.0.0.1"
c.JupyterHub.port = {hub_port}
c.JupyterHub.hub_ip = "127.0.0.1"
c.JupyterHub.hub_port = {api_port}
c.JupyterHub.proxy_class = InMemoryProxy
c.JupyterHub.db_url = "sqlite:///{work}/hub.sqlite"
c.JupyterHub.cookie_secret_file = "{work}/cookie_secret"
c.JupyterHub.pid_file = "{work}/hub.pid"
c.JupyterHub.spawner_class = "simple"
c.JupyterHub.cleanup_servers = True
c.JupyterHub.tornado_settings = {{"slow_spawn_timeout": 0}}  # POST .../server returns at once
c.Authenticator.allow_all = True
c.JupyterHub.services = [{{"name": "scistacks-smoke", "api_token": "{token}"}}]
c.JupyterHub.load_roles = [
    {{
        "name": "scistacks-smoke",
        "scopes": ["admin:users", "admin:servers", "access:servers", "read:users"],
        "services": ["scistacks-smoke"],
    }}
]
c.Spawner.ip = "127.0.0.1"
c.Spawner.port = {port}
c.Spawner.cmd = ["jupyterhub-singleuser"]
c.Spawner.start_timeout = {timeout}
c.Spawner.http_timeout = {timeout}
c.SimpleLocalProcessSpawner.home_dir_template = "{home}"
"""


def api(method: str, url: str, body: dict | None = None) -> tuple[int, dict]:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method=method)
    request.add_header("Authorization", f"token {TOKEN}")
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(request, timeout=30) as resp:
            text = resp.read().decode(errors="replace")
            return resp.status, json.loads(text) if text.strip() else {}
    except urllib.error.HTTPError as exc:
        return exc.code, {"message": exc.read().decode(errors="replace")[:300]}


def wait(what: str, deadline: float, probe):
    last = None
    while time.monotonic() < deadline:
        try:
            result = probe()
            if result:
                return result
        except OSError as exc:
            last = exc
        time.sleep(0.3)
    raise TimeoutError(f"{what} (last: {last})" if last else what)


def main() -> int:
    user, port, timeout = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
    t0 = time.monotonic()
    deadline = t0 + timeout
    work = tempfile.mkdtemp(prefix="scistacks-hub-")
    config = os.path.join(work, "jupyterhub_config.py")
    with open(config, "w") as fh:
        fh.write(
            CONFIG.format(
                hub_port=HUB_PORT,
                api_port=API_PORT,
                work=work,
                token=TOKEN,
                port=port,
                timeout=int(timeout),
                home=os.environ.get("HOME", "/tmp"),
            )
        )
    log = open(os.path.join(work, "hub.log"), "wb")  # noqa: SIM115 (closed in finally)
    hub = subprocess.Popen(
        ["jupyterhub", "-f", config], cwd=work, stdout=log, stderr=subprocess.STDOUT
    )
    hub_api = f"http://127.0.0.1:{API_PORT}/hub/api"
    result = "fail the hub did not answer"
    try:

        def hub_version():
            if hub.poll() is not None:
                raise RuntimeError(f"jupyterhub exited with {hub.returncode} before answering")
            return api("GET", f"{hub_api}/")[1].get("version")

        version = wait("the hub did not answer", deadline, hub_version)
        status, _ = api("POST", f"{hub_api}/users/{user}")
        if status not in (201, 409):
            raise RuntimeError(f"creating user {user} through the hub API gave HTTP {status}")
        status, body = api("POST", f"{hub_api}/users/{user}/server")
        if status not in (201, 202):
            raise RuntimeError(f"the hub refused to spawn: HTTP {status} {body.get('message', '')}")

        def ready():
            if hub.poll() is not None:
                raise RuntimeError(f"the hub exited ({hub.returncode}) while spawning")
            model = api("GET", f"{hub_api}/users/{user}")[1]
            server = (model.get("servers") or {}).get("")
            if not server:
                pending = model.get("pending")
                if pending is None and time.monotonic() - t0 > 5:
                    raise RuntimeError("the spawn failed (see the hub log)")
                return None
            return server if server.get("ready") else None

        server = wait("the single-user server never became ready", deadline, ready)
        url = f"http://127.0.0.1:{port}{server['url']}api"
        status, body = api("GET", url)
        if status != 200 or "version" not in body:
            raise RuntimeError(f"GET {url} with the hub's token gave HTTP {status}")
        result = (
            f"pass jupyterhub-singleuser spawned by JupyterHub {version} answered "
            f"GET {server['url']}api -> 200 (jupyter_server {body['version']}) "
            f"in {time.monotonic() - t0:.1f} s"
        )
        api("DELETE", f"{hub_api}/users/{user}/server")
    except (RuntimeError, TimeoutError, OSError) as exc:
        result = f"fail {exc}"
    finally:
        hub.terminate()
        try:
            hub.wait(10)
        except subprocess.TimeoutExpired:
            hub.kill()
        log.close()
    print(result)
    with open(os.path.join(work, "hub.log"), errors="replace") as fh:
        sys.stdout.write(fh.read()[-6000:])
    return 0 if result.startswith("pass") else 1


if __name__ == "__main__":
    sys.exit(main())
