using System.Buffers;
using System.Net.Sockets;
using System.Text;
using Broker.Stomp;

namespace Broker.Tests.Infrastructure;

/// <summary>
/// A STOMP peer on a bare TCP socket that reads only when told to, so it can play a consumer that never reads: unlike
/// <see cref="StompTestClient"/>, nothing pumps its socket in the background, and its receive buffer is small.
/// </summary>
public sealed class RawStompPeer : IDisposable
{
    private readonly Socket _socket;
    private readonly StompParser _parser = new(new StompParserLimits { MaxFrameBytes = 64 * 1024 * 1024, MaxBodyBytes = 64 * 1024 * 1024 });
    private readonly ArrayBufferWriter<byte> _pending = new();
    private readonly byte[] _readBuffer = new byte[64 * 1024];

    private RawStompPeer(Socket socket) => _socket = socket;

    public static async Task<RawStompPeer> ConnectAsync(int port, int receiveBufferSize = 4096)
    {
        var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp)
        {
            NoDelay = true,
            ReceiveBufferSize = receiveBufferSize, // before connecting, so the window is small from the start
        };
        await socket.ConnectAsync("127.0.0.1", port);
        return new RawStompPeer(socket);
    }

    public async Task SendAsync(string text) => await _socket.SendAsync(Encoding.UTF8.GetBytes(text));

    /// <summary>The next frame (heart-beats skipped), or null if the connection ends or nothing comes in time.</summary>
    public async Task<ReceivedFrame?> ReadFrameAsync(TimeSpan timeout)
    {
        using var cts = new CancellationTokenSource(timeout);
        while (true)
        {
            if (TryParse(out var frame))
            {
                return frame;
            }

            int read;
            try
            {
                read = await _socket.ReceiveAsync(_readBuffer, SocketFlags.None, cts.Token);
            }
            catch (Exception ex) when (ex is OperationCanceledException or SocketException)
            {
                return null;
            }

            if (read == 0)
            {
                return null;
            }

            _pending.Write(_readBuffer.AsSpan(0, read));
        }
    }

    /// <summary>
    /// Whether the server has closed this connection, found without reading: a write to a closed socket draws a
    /// reset, and the next write fails. Probes with heart-beat EOLs until that happens or the deadline passes.
    /// </summary>
    public async Task<bool> WaitForServerCloseAsync(TimeSpan timeout)
    {
        var deadline = DateTime.UtcNow + timeout;
        while (DateTime.UtcNow < deadline)
        {
            if (!await ProbeAsync())
            {
                return true;
            }

            await Task.Delay(50);
        }

        return false;
    }

    /// <summary>Writes one EOL; false when the write fails because the server closed the connection.</summary>
    public async Task<bool> ProbeAsync()
    {
        try
        {
            await _socket.SendAsync("\n"u8.ToArray());
            return true;
        }
        catch (SocketException)
        {
            return false;
        }
    }

    public void Dispose()
    {
        _socket.Dispose();
        _parser.Dispose();
    }

    private bool TryParse(out ReceivedFrame? frame)
    {
        frame = null;
        var buffer = new ReadOnlySequence<byte>(_pending.WrittenMemory);
        var start = buffer.Length;
        try
        {
            while (_parser.TryParse(ref buffer, out var parsed))
            {
                if (!parsed.IsHeartBeat)
                {
                    frame = new ReceivedFrame(parsed.Command, parsed.Headers.ToList(), parsed.Body.ToArray());
                    return true;
                }
            }

            return false;
        }
        finally
        {
            var rest = buffer.ToArray();
            if (rest.Length != start)
            {
                _pending.Clear();
                _pending.Write(rest);
            }
        }
    }
}
