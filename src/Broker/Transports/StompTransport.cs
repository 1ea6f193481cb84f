using System.Buffers;
using System.IO.Pipelines;

namespace Broker.Transports;

/// <summary>Why a connection ends; the WebSocket transport turns it into a close code.</summary>
public enum CloseReason
{
    /// <summary>The client sent DISCONNECT (WebSocket 1000).</summary>
    Disconnect,

    /// <summary>The client broke the protocol; an ERROR was sent (1002).</summary>
    ProtocolError,

    /// <summary>A policy such as the slow-consumer policy or a heart-beat timeout (1008).</summary>
    Policy,

    /// <summary>A frame over the size limit (1009).</summary>
    TooBig,

    /// <summary>The server is shutting down (1001).</summary>
    Shutdown,

    /// <summary>The client went away without DISCONNECT.</summary>
    PeerClosed,
}

/// <summary>
/// What a session needs from a connection, TCP or WebSocket: bytes in as a pipe, frames out. Frames are written
/// into <see cref="Output"/> and each ended with <see cref="EndFrame"/>; <see cref="FlushAsync"/> sends them.
/// </summary>
public abstract class StompTransport
{
    /// <summary>"tcp" or "ws", for logs.</summary>
    public abstract string Name { get; }

    /// <summary>The peer's address, for logs.</summary>
    public abstract string RemoteAddress { get; }

    /// <summary>The highest STOMP version the transport was opened for (a WebSocket subprotocol); null: any.</summary>
    public virtual Stomp.StompVersion? MaxVersion => null;

    /// <summary>A bearer token presented before STOMP started (the WebSocket upgrade's Authorization header or access_token).</summary>
    public string? BearerToken { get; init; }

    /// <summary>Incoming bytes, one stream whatever the framing underneath.</summary>
    public abstract PipeReader Input { get; }

    /// <summary>Where the next frame is written.</summary>
    public abstract IBufferWriter<byte> Output { get; }

    /// <summary>Ends the frame written since the last call (a WebSocket sends each frame as one message).</summary>
    public abstract void EndFrame();

    /// <summary>Sends what was written. Returns false when the peer is gone.</summary>
    public abstract ValueTask<bool> FlushAsync(CancellationToken cancellationToken);

    /// <summary>Cuts the connection at once, failing a pending flush; for a peer that stopped reading.</summary>
    public abstract void Abort();

    /// <summary>Closes the connection after everything written has been sent.</summary>
    public abstract ValueTask CloseAsync(CloseReason reason, CancellationToken cancellationToken);
}
