import Foundation
import VeilLearning

extension ServeConfiguration {
    /// The global model of the store's latest completed round, as a checkpoint (`veil model
    /// export --config`). Reads the store without changing it, so a coordinator may be running.
    /// - Throws: ``ConfigurationError`` when the store cannot be read, has no completed round,
    ///   or its checkpoint does not fit this configuration's model.
    public func latestModel(stores: any StoreDriver = SQLiteStoreDriver()) throws -> ModelCheckpoint {
        let latest: (round: Int, state: FedAvgFamily)?
        do { latest = try CoordinatorStore(reading: store, driver: stores).latestCheckpoint() } catch let error
            as ConfigurationError
        {
            throw error
        } catch {
            throw ConfigurationError("cannot read the coordinator's store at \(store): \(error)")
        }
        if case .tensors = model {
            throw ConfigurationError(
                "the model is the user's (tensors:…): Veil exports only its own softmax and mlp models; the parameters are the store's latest checkpoint, in the schema's order"
            )
        }
        guard let (round, checkpoint) = latest else {
            throw ConfigurationError("the store at \(store) has no completed round yet: nothing to export")
        }
        do {
            return try ModelCheckpoint(
                model: model.description, features: features, classes: classes, round: round,
                parameters: checkpoint.parameters)
        } catch {
            throw ConfigurationError("the store's round \(round) does not fit the configuration: \(error)")
        }
    }
}
