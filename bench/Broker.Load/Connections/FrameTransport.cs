using System.Net;
using System.Net.Sockets;

namespace Broker.Load.Connections;

/// <summary>Bytes to and from a broker: a TCP stream, or WebSocket messages read as one stream.</summary>
internal abstract class FrameTransport : IAsyncDisposable
{
    /// <summary>Sends <paramref name="data"/>; for WebSocket, each range ending at one of <paramref name="frameEnds"/> is one message.</summary>
    public abstract ValueTask SendAsync(ReadOnlyMemory<byte> data, IReadOnlyList<int> frameEnds, CancellationToken cancellationToken);

    /// <summary>Reads what is there; 0 when the peer closed.</summary>
    public abstract ValueTask<int> ReceiveAsync(Memory<byte> buffer, CancellationToken cancellationToken);

    public abstract ValueTask DisposeAsync();

    public static async Task<FrameTransport> ConnectAsync(Uri url, IPAddress source, CancellationToken cancellationToken)
    {
        var socket = await ConnectSocketAsync(url, source, cancellationToken);
        return url.Scheme == "tcp" ? new TcpFrameTransport(socket) : await WebSocketFrameTransport.UpgradeAsync(socket, url, cancellationToken);
    }

    internal static IPAddress ResolveLoopback(Uri url) => url.Host == "localhost" ? IPAddress.Loopback : IPAddress.Parse(url.Host);

    internal static async Task<Socket> ConnectSocketAsync(Uri url, IPAddress source, CancellationToken cancellationToken)
    {
        var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        try
        {
            // Bound first, so connections can be spread over several 127.x source addresses (each has its own ports).
            socket.Bind(new IPEndPoint(source, 0));
            await socket.ConnectAsync(new IPEndPoint(ResolveLoopback(url), url.Port), cancellationToken);
            return socket;
        }
        catch
        {
            socket.Dispose();
            throw;
        }
    }
}

internal sealed class TcpFrameTransport(Socket socket) : FrameTransport
{
    public override async ValueTask SendAsync(ReadOnlyMemory<byte> data, IReadOnlyList<int> frameEnds, CancellationToken cancellationToken)
    {
        while (!data.IsEmpty)
        {
            var sent = await socket.SendAsync(data, SocketFlags.None, cancellationToken);
            data = data[sent..];
        }
    }

    public override ValueTask<int> ReceiveAsync(Memory<byte> buffer, CancellationToken cancellationToken) =>
        socket.ReceiveAsync(buffer, SocketFlags.None, cancellationToken);

    public override ValueTask DisposeAsync()
    {
        socket.Dispose();
        return ValueTask.CompletedTask;
    }
}
