// The error of filter parsing: what is wrong and where, as a JSON path from the filter's root
// (`filter.must[0].range.gt: expected a number, got a string`), so a client can find the spot
// in its own request.

public struct FilterError: Error, Sendable, Equatable, CustomStringConvertible {
    /// Where, e.g. `filter.should[2].match.any[1]`.
    public var path: String
    /// What, e.g. `expected a string, got a number`.
    public var problem: String

    public init(path: String, problem: String) {
        self.path = path
        self.problem = problem
    }

    public var description: String { "\(path): \(problem)" }
}
