using System.Buffers;
using System.IO.Pipelines;
using Microsoft.AspNetCore.Connections;

namespace Broker.Transports;

/// <summary>STOMP over a Kestrel TCP connection: the connection's own duplex pipe, frames written back to back.</summary>
internal sealed class TcpTransport(ConnectionContext connection) : StompTransport
{
    public override string Name => "tcp";

    /// <summary>Made when asked (for logs), not kept: an idle connection should cost little.</summary>
    public override string RemoteAddress => connection.RemoteEndPoint?.ToString() ?? "unknown";

    public override PipeReader Input => connection.Transport.Input;

    public override IBufferWriter<byte> Output => connection.Transport.Output;

    public override void EndFrame()
    {
    }

    public override async ValueTask<bool> FlushAsync(CancellationToken cancellationToken)
    {
        try
        {
            var result = await connection.Transport.Output.FlushAsync(cancellationToken);
            return !result.IsCompleted && !result.IsCanceled;
        }
        catch (Exception ex) when (ex is IOException or ConnectionResetException or OperationCanceledException or InvalidOperationException)
        {
            return false;
        }
    }

    public override void Abort() => connection.Abort(new ConnectionAbortedException("The peer does not read what the broker sends."));

    public override async ValueTask CloseAsync(CloseReason reason, CancellationToken cancellationToken)
    {
        // Completing the output sends what is buffered, then FIN; Kestrel closes the socket when the handler returns.
        await connection.Transport.Output.CompleteAsync();
    }
}
