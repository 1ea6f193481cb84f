using System.Buffers;
using BenchmarkDotNet.Attributes;
using Broker.Stomp;

namespace Broker.Benchmarks;

/// <summary>
/// Parsing throughput and allocations. Each operation parses a whole buffer; OperationsPerInvoke makes the reported
/// time and allocation per frame for the burst.
/// </summary>
[MemoryDiagnoser]
public class ParserBenchmarks
{
    private const int Burst = 1000;
    private readonly StompParser _parser = new(new StompParserLimits { MaxFrameBytes = 1 << 20, MaxBodyBytes = 1 << 20 });
    private ReadOnlySequence<byte> _send100;
    private ReadOnlySequence<byte> _send4K;
    private ReadOnlySequence<byte> _message64K;
    private ReadOnlySequence<byte> _burst;

    [GlobalSetup]
    public void Setup()
    {
        _send100 = new ReadOnlySequence<byte>(Frames.Send(100));
        _send4K = new ReadOnlySequence<byte>(Frames.Send(4096));
        _message64K = new ReadOnlySequence<byte>(Frames.Message(64 * 1024));
        _burst = new ReadOnlySequence<byte>(Frames.Repeat(Frames.Send(100), Burst));
    }

    [Benchmark(Description = "parse SEND, 4 headers, 100 B body")]
    public long ParseSend100() => ParseAll(_send100);

    [Benchmark(Description = "parse SEND, 4 KiB body")]
    public long ParseSend4K() => ParseAll(_send4K);

    [Benchmark(Description = "parse MESSAGE, 64 KiB body")]
    public long ParseMessage64K() => ParseAll(_message64K);

    [Benchmark(Description = "parse burst of 1,000 small SENDs (per frame)", OperationsPerInvoke = Burst)]
    public long ParseBurst() => ParseAll(_burst);

    private long ParseAll(ReadOnlySequence<byte> input)
    {
        long bodyBytes = 0;
        while (_parser.TryParse(ref input, out var frame))
        {
            bodyBytes += frame.Body.Length;
        }

        return bodyBytes;
    }
}
