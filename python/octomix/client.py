"""Trainer-side client of `octomix serve`: batches from an octomix DataLoader running in its own process.

Needs numpy and msgpack (Debian: apt-get install python3-numpy python3-msgpack; pip: pip install numpy msgpack);
torch is optional (`batch.to_torch()`, `batch.cuda()`). The server puts every batch in a shared-memory ring; this
client maps the ring once and hands out numpy arrays that are views of it, so no batch is copied. A view is valid
until `batch.release()`: after that the server reuses the slot for a later batch, so copy what must outlive the step
(`batch.copy()` or `np.array(view)`).

(This module is longer than octomix's usual 400 lines on purpose: it is one client class with the protocol's framing
and the CUDA IPC mapping it needs, and the single-file `octomix_client.py` shim re-exports it whole.)

    from octomix import OctomixClient

    with OctomixClient(recipe="recipe.yaml", branch="long", rank=rank, world_size=world_size,
                       micro_batch_size=2, resume=saved_state) as client:
        for batch in client:
            loss = model(batch["input_ids"], batch["labels"], batch["position_ids"], batch["cu_seqlens"])
            batch.release()
            if batch.micro_batch == client.micro_batches_per_step - 1:
                save(client.state())      # a small dict; pass as resume= to continue exactly here

Messages are msgpack maps in frames of a 4-byte little-endian length (src/serve/protocol.ts has the protocol). The
batch fields are the server's: each batch message lists them (name, dtype, offset, shape), and this client builds
its views from that, naming each field in snake_case (inputIds -> input_ids).
"""
from __future__ import annotations

import json
import mmap
import os
import re
import shutil
import socket
import struct
import subprocess
import tempfile
import time
from typing import Any, Dict, Iterator, List, Optional

import numpy as np

try:
    import msgpack
except ImportError as _error:  # pragma: no cover - depends on the machine
    raise ImportError("octomix_client needs the msgpack package: pip install msgpack (Debian/Ubuntu: apt-get install python3-msgpack)") from _error

__all__ = ["OctomixClient", "Batch", "OctomixServerError", "pack", "unpack", "snake_case", "find_cli"]


class OctomixServerError(RuntimeError):
    """An error reported by the server (`code` is octomix's stable error code, `message` the server's words) or a
    server that went away (code SERVER_EXITED, SERVER_GONE or SERVER_TIMEOUT)."""

    def __init__(self, code: str, message: str):
        super().__init__(f"{message} [{code}]")
        self.code = code
        self.message = message


def pack(value: Any) -> bytes:
    """msgpack bytes of a value (integers of any width keep their value; bytes as bin)."""
    return msgpack.packb(value, use_bin_type=True)


def unpack(data: bytes) -> Any:
    """The value of msgpack bytes; trailing bytes are an error."""
    return msgpack.unpackb(data, raw=False, strict_map_key=False)


def find_cli(command: Optional[List[str]] = None) -> List[str]:
    """How to run the `octomix` CLI, in this order: `command`; $OCTOMIX_CLI (split on spaces); the npm package this
    Python package sits in (node_modules/octomix/python, used in place or installed editable); `octomix` on PATH;
    node_modules/.bin/octomix in the working directory or a parent. Raises OctomixServerError (CLI_MISSING) saying
    what to install when none is found, or when Node.js is missing."""
    if command:
        return list(command)
    if os.environ.get("OCTOMIX_CLI"):
        return os.environ["OCTOMIX_CLI"].split()
    here = os.path.dirname(os.path.abspath(__file__))
    main = os.path.join(here, "..", "..", "dist", "cli", "main.js")
    candidates: List[List[str]] = []
    if os.path.exists(main):
        candidates.append(["node", os.path.normpath(main)])
    if shutil.which("octomix"):
        candidates.append(["octomix"])
    folder = os.getcwd()
    while True:
        local = os.path.join(folder, "node_modules", ".bin", "octomix")
        if os.path.exists(local):
            candidates.append([local])
            break
        parent = os.path.dirname(folder)
        if parent == folder:
            break
        folder = parent
    if not candidates:
        raise OctomixServerError("CLI_MISSING", "the octomix CLI was not found: install Node.js >= 20 and the npm package (npm install octomix), "
                                 "run from the folder that holds node_modules, or name it with OCTOMIX_CLI=/path/to/octomix or command=[...]")
    chosen = candidates[0]
    if not shutil.which("node") and (chosen[0] == "node" or not os.path.exists(chosen[0])):
        raise OctomixServerError("CLI_MISSING", "Node.js is not on PATH: install Node.js >= 20 (the octomix CLI runs on it)")
    return chosen


def snake_case(name: str) -> str:
    """A field name as this client spells it: inputIds -> input_ids."""
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


# --- CUDA IPC (device='cuda:N'; the driver's libcuda.so.1, or the library OCTOMIX_CUDA_DRIVER names) ------------

class _DeviceArray:
    """A device buffer described by __cuda_array_interface__ (version 3), so torch.as_tensor wraps it without a copy."""

    def __init__(self, pointer: int, shape: tuple, dtype: np.dtype):
        self.__cuda_array_interface__ = {"shape": shape, "typestr": dtype.str, "data": (pointer, True), "version": 3,
                                         "strides": None, "stream": None}


_libcuda = None


def _driver():
    global _libcuda
    if _libcuda is None:
        import ctypes

        _libcuda = ctypes.CDLL(os.environ.get("OCTOMIX_CUDA_DRIVER") or "libcuda.so.1")
    return _libcuda


def _check(result: int, call: str) -> None:
    if result != 0:
        raise OctomixServerError("DEVICE_UNAVAILABLE", f"{call} failed with CUDA error {result}")


def _make_context_current(ordinal: int) -> None:
    """Makes device `ordinal`'s primary context current on this thread through the driver API (the context torch
    uses too), so mapping the ring needs no torch."""
    import ctypes

    library = _driver()
    _check(library.cuInit(ctypes.c_uint(0)), "cuInit")
    device = ctypes.c_int(0)
    _check(library.cuDeviceGet(ctypes.byref(device), ctypes.c_int(ordinal)), "cuDeviceGet")
    context = ctypes.c_void_p(0)
    _check(library.cuDevicePrimaryCtxRetain(ctypes.byref(context), device), "cuDevicePrimaryCtxRetain")
    _check(library.cuCtxSetCurrent(context), "cuCtxSetCurrent")


def _release_context(ordinal: int) -> None:
    import ctypes

    library = _driver()
    release = getattr(library, "cuDevicePrimaryCtxRelease_v2", None) or library.cuDevicePrimaryCtxRelease
    release(ctypes.c_int(ordinal))


def _open_ipc_handle(handle: bytes, ordinal: int) -> int:
    import ctypes

    _make_context_current(ordinal)

    class IpcHandle(ctypes.Structure):
        _fields_ = [("reserved", ctypes.c_char * 64)]

    library = _driver()
    opener = getattr(library, "cuIpcOpenMemHandle_v2", None) or library.cuIpcOpenMemHandle
    pointer = ctypes.c_uint64(0)
    result = opener(ctypes.byref(pointer), IpcHandle.from_buffer_copy(bytes(handle)), ctypes.c_uint(1))  # LAZY_ENABLE_PEER_ACCESS
    if result != 0:
        raise OctomixServerError("DEVICE_UNAVAILABLE", f"cuIpcOpenMemHandle failed with CUDA error {result}")
    return pointer.value


def _close_ipc_handle(pointer: int) -> None:
    import ctypes

    _driver().cuIpcCloseMemHandle(ctypes.c_uint64(pointer))


def _copy_device_to_host(pointer: int, out: np.ndarray) -> None:
    import ctypes

    copy = getattr(_driver(), "cuMemcpyDtoH_v2", None) or _driver().cuMemcpyDtoH
    _check(copy(out.ctypes.data_as(ctypes.c_void_p), ctypes.c_uint64(pointer), ctypes.c_size_t(out.nbytes)), "cuMemcpyDtoH")


# --- client ----------------------------------------------------------------------------------------------------

class Batch:
    """One micro-batch: numpy views of the shared ring (row-major microBatchSize x seqLength), valid until release().

    Fields (also as attributes), as the server lists them: input_ids, labels, position_ids (int32), loss_mask (uint8),
    cu_seqlens (int32, one per segment boundary over the flattened micro-batch), document_ids (int32 per segment, -1
    for padding), source_ids (uint16 per row), samples (float64 per row: the row's sample number in its source).
    Metadata: index, step, micro_batch, stage, stage_index, max_seqlen, loss_tokens, sources (names per row).
    """

    def __init__(self, client: "OctomixClient", message: Dict[str, Any]):
        self._client = client
        self.slot: int = message["slot"]
        self.index: int = message["index"]
        self.step: int = message["step"]
        self.micro_batch: int = message["microBatch"]
        self.stage: str = message["stage"]
        self.stage_index: int = message["stageIndex"]
        self.max_seqlen: int = message["maxSeqlen"]
        self.loss_tokens: int = message["lossTokens"]
        self.sources: List[str] = message["sources"]
        self.released = False
        self._specs = message["fields"]
        self._names = frozenset(snake_case(name) for name in message["fields"])
        self._fields: Dict[str, np.ndarray] = {}
        for name, spec in message["fields"].items():
            count = int(np.prod(spec["shape"])) if spec["shape"] else 0
            view = np.frombuffer(client._ring, dtype=np.dtype(spec["dtype"]), count=count, offset=spec["offset"])
            self._fields[snake_case(name)] = view.reshape(spec["shape"])

    def __getitem__(self, name: str) -> np.ndarray:
        if self.released:
            raise RuntimeError(f"batch field {name} read after release(); copy what you need first")
        return self._fields[name]

    def __getattr__(self, name: str) -> np.ndarray:
        if name.startswith("_") or name not in self.__dict__.get("_names", ()):
            raise AttributeError(name)
        return self[name]

    def keys(self):
        return self._fields.keys()

    def copy(self) -> Dict[str, np.ndarray]:
        """Every field copied out of the ring (valid after release)."""
        return {name: np.array(view) for name, view in self._fields.items()}

    def to_torch(self, device: Optional[str] = None, pin_memory: bool = False) -> Dict[str, Any]:
        """The fields as torch tensors, copied out of the ring (so valid after release), then moved to `device`."""
        import torch  # optional dependency

        if self.released:
            raise RuntimeError("batch.to_torch() after release(); convert before releasing")
        tensors = {}
        for name, view in self._fields.items():
            # torch has no uint16 tensors before 2.3: source_ids (uint16 in the ring) comes as int32
            tensor = torch.from_numpy(view.astype(np.int32) if view.dtype == np.uint16 else np.array(view))
            if pin_memory:
                tensor = tensor.pin_memory()
            tensors[name] = tensor.to(device, non_blocking=pin_memory) if device else tensor
        return tensors

    def cuda(self) -> Dict[str, Any]:
        """With device='cuda:N': the fields as torch tensors over the server's device ring (no copy; the batch is on
        the device before the server announces it). Valid until release(), which first waits for the current CUDA
        stream so no kernel still reads the slot when the server refills it."""
        import torch  # optional dependency

        base = self._client._device_base
        if base is None:
            raise RuntimeError("batch.cuda() needs a client opened with device='cuda:N'")
        if self.released:
            raise RuntimeError("batch.cuda() after release()")
        tensors = {}
        for name, spec in self._specs.items():
            array = _DeviceArray(base + spec["offset"], tuple(spec["shape"]), np.dtype(spec["dtype"]))
            tensors[snake_case(name)] = torch.as_tensor(array, device=self._client.device)
        self._uses_device = True
        return tensors

    def read_device(self, name: str) -> np.ndarray:
        """With device='cuda:N': field `name` copied back from the server's device ring (cuMemcpyDtoH), as numpy;
        for checking the device copy without torch."""
        base = self._client._device_base
        if base is None:
            raise RuntimeError("batch.read_device() needs a client opened with device='cuda:N'")
        if self.released:
            raise RuntimeError("batch.read_device() after release()")
        for field, spec in self._specs.items():
            if snake_case(field) == name:
                out = np.empty(tuple(spec["shape"]), dtype=np.dtype(spec["dtype"]))
                _copy_device_to_host(base + spec["offset"], out)
                return out
        raise KeyError(name)

    def release(self) -> None:
        """Hands the slot back to the server; the views must not be read afterwards."""
        if self.released:
            return
        if getattr(self, "_uses_device", False):
            import torch

            torch.cuda.current_stream(torch.device(self._client.device)).synchronize()
        self.released = True
        self._fields = {}
        self._client._send({"type": "release", "slot": self.slot})

    def __enter__(self) -> "Batch":
        return self

    def __exit__(self, *exc) -> None:
        self.release()


class OctomixClient:
    """Starts `octomix serve` (or connects to a running one with `socket_path=`) and iterates its batches.

    recipe, branch, rank, world_size, micro_batch_size, prefetch, threads, cache_dir: as DataLoader.open's options.
    resume: a state from `state()` (a dict). device: 'cpu' (numpy views of the shared ring) or 'cuda:N' (also
    `batch.cuda()`: torch tensors over the server's device ring, mapped once through a CUDA IPC handle; needs torch).
    pipeline: batch requests kept in flight (default 2; at most the server's ring slots). command: how to run octomix
    (default: find_cli()).
    receive_timeout: seconds to wait for any one reply before raising OctomixServerError SERVER_TIMEOUT (default 300;
    None waits forever). Raises OctomixServerError, with the server's code and message, when the server fails to
    start, reports an error, or goes away.
    """

    def __init__(self, recipe: Optional[str] = None, branch: Optional[str] = None, rank: int = 0, world_size: int = 1,
                 micro_batch_size: Optional[int] = None, prefetch: Optional[int] = None, threads: Optional[int] = None,
                 resume: Optional[Dict[str, Any]] = None, cache_dir: Optional[str] = None, device: str = "cpu",
                 command: Optional[List[str]] = None, socket_path: Optional[str] = None, start_timeout: float = 600.0,
                 env: Optional[Dict[str, str]] = None, pipeline: int = 2, receive_timeout: Optional[float] = 300.0):
        if device != "cpu" and not (device.startswith("cuda:") and device[5:].isdigit()):
            raise ValueError(f"device must be 'cpu' or 'cuda:N', received {device!r}")
        self.device = device
        self._device_base: Optional[int] = None
        if not isinstance(pipeline, int) or pipeline < 1:
            raise ValueError(f"pipeline must be an integer >= 1, received {pipeline!r}")
        if receive_timeout is not None and not receive_timeout > 0:
            raise ValueError(f"receive_timeout must be > 0 seconds or None, received {receive_timeout!r}")
        self._receive_timeout = receive_timeout
        # Requests for the next batches kept in flight, so the server's reply is already waiting when the trainer
        # asks (each one holds a ring slot, so keep it under prefetch).
        self._pipeline = pipeline
        self._outstanding = 0
        self._ready: List[Dict[str, Any]] = []
        self._ended = False
        self._consumed: Optional[int] = None
        self._process: Optional[subprocess.Popen] = None
        self._folder: Optional[str] = None
        self._buffer = b""
        self._closed = False
        if socket_path is None:
            if recipe is None:
                raise ValueError("recipe is required unless socket_path names a running server")
            self._folder = tempfile.mkdtemp(prefix="octomix-client-")
            socket_path = os.path.join(self._folder, "serve.sock")
            arguments = ["serve", "--recipe", str(recipe), "--socket", socket_path, "--rank", str(rank), "--world-size", str(world_size),
                         "--device", device]
            options = {"--branch": branch, "--micro-batch-size": micro_batch_size, "--prefetch": prefetch,
                       "--threads": threads, "--cache-dir": cache_dir}
            for flag, value in options.items():
                if value is not None:
                    arguments += [flag, str(value)]
            if resume is not None:
                state_path = os.path.join(self._folder, "resume.json")
                with open(state_path, "w") as handle:
                    json.dump(resume, handle)
                arguments += ["--resume", state_path]
            command = find_cli(command)
            try:
                self._process = subprocess.Popen(command + arguments, stdout=subprocess.PIPE, env=env)
            except OSError as error:
                self._cleanup_folder()
                raise OctomixServerError("CLI_MISSING", f"cannot run {' '.join(command)} ({error}): install Node.js >= 20 and the octomix npm "
                                         "package, or name the CLI with command=[...] or OCTOMIX_CLI") from None
            # The server prints one JSON line once it listens (after checking the shards and building the plan), or
            # the error that stopped it.
            line = self._process.stdout.readline()
            if not line:
                code = self._process.wait()
                self._cleanup_folder()
                raise OctomixServerError("SERVER_EXITED", f"{' '.join(command)} serve exited with code {code} before listening (its stderr above says why)")
            ready = json.loads(line)
            if "error" in ready:
                self._process.wait()
                self._cleanup_folder()
                raise OctomixServerError(ready["error"].get("code", "INTERNAL"), ready["error"].get("message", ""))
            socket_path = ready["socket"]
        self._socket = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        deadline = time.monotonic() + start_timeout
        while True:
            try:
                self._socket.connect(socket_path)
                break
            except (FileNotFoundError, ConnectionRefusedError):
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        self._socket.settimeout(self._receive_timeout)
        hello = self._receive()
        if hello.get("type") == "error":
            raise OctomixServerError(hello.get("code", "ERROR"), hello.get("message", ""))
        self.hello = hello
        self.micro_batch_size: int = hello["microBatchSize"]
        self.seq_length: int = hello["seqLength"]
        self.micro_batches_per_step: int = hello["microBatchesPerStep"]
        self.total_micro_batches: int = hello["totalMicroBatches"]
        self.total_steps: int = hello["totalSteps"]
        self.sources: List[str] = hello["sources"]
        self.stages: List[str] = hello["stages"]
        self.slots: int = hello["slots"]
        # Each request in flight holds a ring slot on the server, so never more than it has.
        self._pipeline = min(self._pipeline, self.slots)
        if hello.get("ipcHandle") is not None:
            self._device_base = _open_ipc_handle(hello["ipcHandle"], int(hello["device"].split(":")[1]))
        shared = hello["sharedMemory"]
        descriptor = os.open(shared["path"], os.O_RDONLY)
        try:
            self._ring = mmap.mmap(descriptor, shared["bytes"], mmap.MAP_SHARED, mmap.PROT_READ)
        finally:
            os.close(descriptor)

    # framing
    def _send(self, message: Dict[str, Any]) -> None:
        body = pack(message)
        try:
            self._socket.sendall(struct.pack("<I", len(body)) + body)
        except (BrokenPipeError, ConnectionResetError, OSError) as error:
            raise OctomixServerError("SERVER_GONE", f"octomix serve is gone ({error})") from None

    def _receive(self) -> Dict[str, Any]:
        while True:
            if len(self._buffer) >= 4:
                length = struct.unpack_from("<I", self._buffer)[0]
                if len(self._buffer) >= 4 + length:
                    body = self._buffer[4:4 + length]
                    self._buffer = self._buffer[4 + length:]
                    return unpack(body)
            try:
                chunk = self._socket.recv(1 << 16)
            except socket.timeout:
                raise OctomixServerError("SERVER_TIMEOUT", f"octomix serve sent nothing for {self._receive_timeout} s (receive_timeout)") from None
            except (ConnectionResetError, OSError) as error:
                raise OctomixServerError("SERVER_GONE", f"octomix serve is gone ({error})") from None
            if not chunk:
                raise OctomixServerError("SERVER_GONE", "octomix serve closed the connection")
            self._buffer += chunk

    def _request(self, message: Dict[str, Any]) -> Dict[str, Any]:
        self._send(message)
        # The server answers in order: first the batch requests still in flight, kept for next_batch.
        while self._outstanding > 0:
            self._ready.append(self._receive())
            self._outstanding -= 1
        reply = self._receive()
        if reply.get("type") == "error":
            raise OctomixServerError(reply.get("code", "ERROR"), reply.get("message", ""))
        return reply

    def next_batch(self) -> Optional[Batch]:
        """The next micro-batch, or None after the last stage."""
        if self._ended and not self._ready:
            return None
        while self._outstanding + len(self._ready) < self._pipeline and not self._ended:
            self._send({"type": "next"})
            self._outstanding += 1
        if not self._ready:
            reply = self._receive()
            self._outstanding -= 1
        else:
            reply = self._ready.pop(0)
        if reply["type"] == "error":
            raise OctomixServerError(reply.get("code", "ERROR"), reply.get("message", ""))
        if reply["type"] == "end":
            self._ended = True
            self._ready.clear()
            return None
        self._consumed = reply["index"] + 1
        return Batch(self, reply)

    def __iter__(self) -> Iterator[Batch]:
        while True:
            batch = self.next_batch()
            if batch is None:
                return
            yield batch

    def state(self) -> Dict[str, Any]:
        """The loader state after the batches this client has returned so far (pass as resume= to continue)."""
        message: Dict[str, Any] = {"type": "state"}
        if self._consumed is not None:
            message["consumed"] = self._consumed
        return self._request(message)["state"]

    def progress(self) -> Dict[str, Any]:
        return self._request({"type": "progress"})["progress"]

    def ping(self, payload: Any = None) -> Any:
        """A round trip to the server; returns `payload` as the server decoded and re-encoded it."""
        return self._request({"type": "ping", "payload": payload})["payload"]

    def close(self) -> None:
        """Tells the server to stop (it removes its shared memory) and waits for it."""
        if self._closed:
            return
        self._closed = True
        if self._device_base is not None:  # unmap before the server frees the device ring
            _close_ipc_handle(self._device_base)
            _release_context(int(self.device.split(":")[1]))
            self._device_base = None
        try:
            self._send({"type": "close"})
        except OctomixServerError:
            pass  # already gone
        self._socket.close()
        try:
            self._ring.close()
        except BufferError:
            pass  # numpy views still alive; the mapping goes when they do
        if self._process is not None:
            if self._process.stdout is not None:
                self._process.stdout.close()
            try:
                self._process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
        self._cleanup_folder()

    def _cleanup_folder(self) -> None:
        if self._folder:
            shutil.rmtree(self._folder, ignore_errors=True)
            self._folder = None

    def __enter__(self) -> "OctomixClient":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:
            pass
